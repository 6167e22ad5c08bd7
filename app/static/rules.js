// The server's rules, read once when the page opens, never copied here: the parameter
// fields (labels, limits) from its OpenAPI schema, the ones the running model's family
// takes and their defaults, the accepted images, upload limits, relaxed filters and how
// marks become prompts from GET /info. `rules` settles to what was read.
"use strict";

let imageFormats = "supported";  // until /info says "PNG, JPEG, WEBP, BMP or TIFF"
let fileHint = "";  // what the drop zone says before a pick

// The other scripts (app.js: formatBytes, chosenFile) have all run by DOMContentLoaded;
// the answers may come sooner.
const scriptsRun = new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve));

const rules = (async () => {
  const [schema, info] = await Promise.all([getJson("/openapi.json"), getJson("/info")]);
  await scriptsRun;
  const all = schema.components.schemas.GenerationParams.properties;
  const params = Object.fromEntries(Object.entries(all).filter(([name]) => name in info.parameters));
  addParamFields(params, info.parameters);
  describeUploads(info.limits);
  return { params, limits: info.limits, relaxed: info.relaxed_parameters, marksRule: info.marks_rule };
})();

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// One text field per parameter: a number field would drop typed letters without a word,
// so app.js checks what was typed and names the field instead.
function addParamFields(params, defaults) {
  const fields = Object.entries(params).map(([name, spec]) => {
    const number = (spec.anyOf || [spec]).find((s) => s.type !== "null");
    const input = document.createElement("input");
    Object.assign(input, { name, title: spec.description, autocomplete: "off",
      inputMode: { integer: "numeric", boolean: "text" }[number.type] ?? "decimal" });
    input.dataset.type = number.type;
    // The family's default (pred_iou_thresh), or the server's setting (min_object_pixels).
    input.placeholder = String(defaults[name]);
    const label = document.createElement("label");
    label.append(spec.title, input);
    return label;
  });
  document.getElementById("param-grid").prepend(...fields);
}

function describeUploads(limits) {
  const names = limits.image_formats;
  document.getElementById("image-input").accept = names.map((f) => `image/${f.toLowerCase()}`).join(",");
  imageFormats = `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
  fileHint = `${imageFormats}, up to ${formatBytes(limits.max_image_bytes)}`;
  if (!chosenFile) document.getElementById("file-name").textContent = fileHint;
}

// A parameter's label on this page ("Predicted IoU threshold" for pred_iou_thresh).
function labelOf(name) {
  const input = document.querySelector(`#param-grid input[name="${CSS.escape(name)}"]`);
  return input ? input.parentElement.firstChild.textContent : name;
}
