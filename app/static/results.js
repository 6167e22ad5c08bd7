// A finished job on the page: the summary, the downloads, the overlay and one card per
// cut-out, or, when no object passed the filters, a way to try relaxed ones.
// Files are fetched with fetch() (so an API key header can go along) and shown as blob URLs.
"use strict";

let blobUrls = [];

async function showResult(body) {
  forgetResult();
  const urls = body.urls;
  const metadata = await (await asset(urls.metadata)).json();
  $("objects-count").textContent = body.objects_count;
  $("objects-word").textContent = body.objects_count === 1 ? "object" : "objects";
  const seconds = (body.timings.completed / 1000).toFixed(1);
  $("summary-meta").textContent =
    `${metadata.image.width} × ${metadata.image.height} px · ${metadata.model_type} on ${metadata.device} · ${seconds} s · job ${body.job_id}`;

  const overlayUrl = await blobUrl(urls.overlay);
  $("overlay").src = overlayUrl;
  link($("download-overlay"), overlayUrl, "overlay.png");
  link($("download-metadata"), await blobUrl(urls.metadata), "metadata.json");
  link($("download-annotations"), await blobUrl(urls.annotations), "annotations.json");
  const archive = $("download-archive");
  archive.href = urls.archive;  // a real link, so Tab reaches it; the click adds the API key
  archive.onclick = (event) => saveArchive(event, urls.archive, `${body.job_id}.zip`);

  const cards = await Promise.all(metadata.objects.map((obj, i) => card(obj, urls.objects[i])));
  $("gallery").replaceChildren(...cards);
  $("gallery-title").hidden = !cards.length;
  await offerRelaxedFilters(cards.length === 0, body.parameters);
  $("results").hidden = false;
  $("results").scrollIntoView({ behavior: "smooth", block: "start" });
}

// Hide the last result and free its files: it belongs to another image or request.
function forgetResult() {
  $("results").hidden = true;
  $("gallery").replaceChildren();
  for (const url of blobUrls.splice(0)) URL.revokeObjectURL(url);
}

async function offerRelaxedFilters(nothingFound, applied) {
  $("no-objects").hidden = !nothingFound;
  if (!nothingFound) return;
  const { relaxed } = await rules;
  const names = Object.keys(relaxed);
  const used = names.map((n) => `${labelOf(n)} ${applied[n]}`).join(", ");
  $("no-objects-why").textContent = `Small models often score below the default filters (${used}).`;
  const button = $("relax");
  button.textContent = `Segment again with ${names.map((n) => `${labelOf(n)} ${relaxed[n]}`).join(", ")}`;
  button.onclick = () => {
    for (const name of names) form.querySelector(`[name="${name}"]`).value = relaxed[name];
    document.querySelector("details.params").open = true;
    segment({});
  };
}

async function card(obj, url) {
  const node = $("card-template").content.firstElementChild.cloneNode(true);
  const src = await blobUrl(url);
  node.dataset.index = obj.index;
  node.style.setProperty("--mask-colour", maskColour(obj.index));
  node.querySelector("img").src = src;
  node.querySelector("img").alt = `Object ${obj.index + 1}`;
  node.querySelector(".name").textContent = `Object ${obj.index + 1}`;
  node.querySelector(".area").textContent = `${obj.area.toLocaleString()} px`;
  node.querySelector(".score").textContent = obj.predicted_iou.toFixed(3);
  const [x, y, w, h] = obj.bbox;
  node.querySelector(".box").textContent = `${w} × ${h} at (${x}, ${y})`;
  link(node.querySelector(".download"), src, obj.object_file);
  return node;
}

async function asset(url) {
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

async function blobUrl(url) {
  const objectUrl = URL.createObjectURL(await (await asset(url)).blob());
  blobUrls.push(objectUrl);
  return objectUrl;
}

function link(anchor, href, name) { anchor.href = href; anchor.download = name; }

async function saveArchive(event, url, name) {
  event.preventDefault();
  try {
    const temporary = document.createElement("a");
    link(temporary, URL.createObjectURL(await (await asset(url)).blob()), name);
    temporary.click();
    setTimeout(() => URL.revokeObjectURL(temporary.href), 10000);
  } catch (error) {
    showError("The archive could not be downloaded", String(error.message || error));
  }
}

// The same colours as the overlay (app/services/results/overlay.py): golden-ratio hues, HSV(h, 0.75, 1).
function maskColour(index) {
  const h = (index * 0.618033988749895) % 1, s = 0.75, v = 1;
  const i = Math.floor(h * 6), f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return `rgb(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)})`;
}
