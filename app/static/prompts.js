// Prompted cut-outs: point at the object to cut out instead of segmenting everything.
// Click = a point on the object, shift-click = a "not this" point, drag = a box.
// "Cut out" sends the marks as they are (the `marks` field); the server groups them into
// prompts by its rule, which the page shows as GET /info states it.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const area = $("prompt-area"), image = $("prompt-image"), svg = $("prompt-marks");
  const SVG = "http://www.w3.org/2000/svg";
  const DRAG_PX = 6; // a shorter drag is a click
  let marks = []; // {kind: "point", x, y, label} | {kind: "box", box: [x0, y0, x1, y1]}
  let start = null;

  $("preview").addEventListener("load", () => {
    image.src = $("preview").src;
    area.hidden = false;
    marks = [];
    draw();
  });

  // Pixel coordinates in the image as uploaded (the browser shows it EXIF-oriented, as the server reads it).
  function toImage(event) {
    const rect = image.getBoundingClientRect();
    const sx = image.naturalWidth / rect.width, sy = image.naturalHeight / rect.height;
    const clamp = (v, most) => Math.min(Math.max(v, 0), most);
    return [clamp(Math.round((event.clientX - rect.left) * sx), image.naturalWidth - 1),
            clamp(Math.round((event.clientY - rect.top) * sy), image.naturalHeight - 1)];
  }

  svg.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    start = { client: [event.clientX, event.clientY], at: toImage(event) };
    svg.setPointerCapture(event.pointerId);
  });
  svg.addEventListener("pointermove", (event) => {
    if (start && dragged(event)) draw(boxFrom(start.at, toImage(event)));
  });
  svg.addEventListener("pointerup", (event) => {
    if (!start) return;
    if (dragged(event)) marks.push({ kind: "box", box: boxFrom(start.at, toImage(event)) });
    else marks.push({ kind: "point", x: start.at[0], y: start.at[1], label: event.shiftKey ? 0 : 1 });
    start = null;
    draw();
  });

  const dragged = (event) => Math.hypot(event.clientX - start.client[0], event.clientY - start.client[1]) >= DRAG_PX;
  const boxFrom = ([ax, ay], [bx, by]) =>
    [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx) + 1, Math.max(ay, by) + 1];

  const marksField = () => JSON.stringify({
    points: marks.filter((m) => m.kind === "point").map((p) => [p.x, p.y, p.label]),
    boxes: marks.filter((m) => m.kind === "box").map((m) => m.box),
  });
  let marksRule = "";
  rules.then((r) => { marksRule = r.marksRule; draw(); }, () => {});

  function draw(pending) {
    svg.setAttribute("viewBox", `0 0 ${image.naturalWidth || 1} ${image.naturalHeight || 1}`);
    const radius = Math.max(image.naturalWidth, image.naturalHeight) / 80 || 3;
    const shapes = [];
    for (const m of [...marks, ...(pending ? [{ kind: "box", box: pending, pending: true }] : [])]) {
      const node = document.createElementNS(SVG, m.kind === "point" ? "circle" : "rect");
      if (m.kind === "point") {
        Object.entries({ cx: m.x + 0.5, cy: m.y + 0.5, r: radius }).forEach(([k, v]) => node.setAttribute(k, v));
        node.setAttribute("class", m.label ? "mark positive" : "mark negative");
      } else {
        const [x0, y0, x1, y1] = m.box;
        Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }).forEach(([k, v]) => node.setAttribute(k, v));
        node.setAttribute("class", m.pending ? "mark box pending" : "mark box");
      }
      shapes.push(node);
    }
    svg.replaceChildren(...shapes);
    $("prompt-count").textContent = marks.length
      ? `${marks.length} mark${marks.length === 1 ? "" : "s"}. ${marksRule}`
      : "Click the object to cut out · shift-click: not this · drag: a box";
    $("cut-out").disabled = !marks.length;
    $("undo-mark").disabled = $("clear-marks").disabled = !marks.length;
  }

  $("undo-mark").addEventListener("click", () => { marks.pop(); draw(); });
  $("clear-marks").addEventListener("click", () => { marks = []; draw(); });
  $("cut-out").addEventListener("click", () => window.segment({ marks: marksField() }));
})();
