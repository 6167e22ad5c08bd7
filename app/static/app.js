// The web page: send the image to the job API (jobs.js), then show the overlay and every cut-out.
// Files are fetched with fetch() (so an API key header can go along) and shown as blob URLs.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("segment-form");
const input = $("image-input");
const dropzone = $("dropzone");
const keyInput = $("api-key");
let chosenFile = null;
let blobUrls = [];

keyInput.value = sessionStorage.getItem("apiKey") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("apiKey", keyInput.value));

function headers() {
  return keyInput.value ? { "X-API-Key": keyInput.value } : {};
}

function choose(file) {
  chosenFile = file || null;
  const preview = $("preview");
  preview.hidden = !file;
  if (preview.src) URL.revokeObjectURL(preview.src);
  if (file) {
    preview.src = URL.createObjectURL(file);
    $("file-name").textContent = `${file.name} · ${formatBytes(file.size)}`;
  }
  dropzone.classList.toggle("has-file", Boolean(file));
}

input.addEventListener("change", () => choose(input.files[0]));
for (const type of ["dragenter", "dragover"]) {
  dropzone.addEventListener(type, (event) => { event.preventDefault(); dropzone.classList.add("dragging"); });
}
for (const type of ["dragleave", "drop"]) {
  dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
}
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
});

form.addEventListener("submit", (event) => { event.preventDefault(); segment({}); });
// Segment everything, or only what `extra.prompts` points at (prompts.js calls window.segment).
window.segment = segment;
const PROMPT_PARAMS = ["stability_score_offset", "min_object_pixels"];
async function segment(extra) {
  $("error").hidden = true;
  if (!chosenFile) return showError("No image chosen", "Pick an image file or drop one on the box first.");
  const data = new FormData();
  data.append("image", chosenFile, chosenFile.name);
  for (const field of form.querySelectorAll(".param-grid input[name]")) {
    // Prompts decode one object each: the point-grid parameters do not apply to them.
    const applies = !extra.prompts || PROMPT_PARAMS.includes(field.name);
    if (applies && field.value.trim() !== "") data.append(field.name, field.value.trim());
  }
  for (const [name, value] of Object.entries(extra)) data.append(name, value);
  setBusy(true);
  try {
    const { response, body } = await runJob(data, headers());  // jobs.js: POST /jobs + progress
    if (!response.ok || !body || body.success === false) {
      return showEnvelope(response, body);
    }
    await showResult(body);
  } catch (error) {
    showError("Could not reach the server", String(error.message || error));
  } finally {
    setBusy(false);
  }
}

let busyTimer = null;
function setBusy(busy) {
  document.body.classList.toggle("busy", busy);
  $("form-fields").disabled = busy;
  $("submit").querySelector(".label").textContent = busy ? "Segmenting…" : "Segment image";
  clearInterval(busyTimer);
  const status = $("status");
  if (!busy) { status.textContent = ""; return; }
  const started = performance.now();
  const tick = () => { status.textContent = `Finding objects… ${((performance.now() - started) / 1000).toFixed(0)} s`; };
  tick();
  busyTimer = setInterval(tick, 500);
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

async function showResult(body) {
  for (const url of blobUrls.splice(0)) URL.revokeObjectURL(url);
  const urls = body.urls;
  const metadata = await (await asset(urls.metadata)).json();
  const objects = metadata.objects;
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
  archive.removeAttribute("href");
  archive.onclick = (event) => saveArchive(event, urls.archive, `${body.job_id}.zip`);

  const cards = await Promise.all(objects.map((obj, i) => card(obj, urls.objects[i])));
  $("gallery").replaceChildren(...cards);
  $("results").hidden = false;
  $("results").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function card(obj, url) {
  const node = $("card-template").content.firstElementChild.cloneNode(true);
  const src = await blobUrl(url);
  const colour = maskColour(obj.index);
  node.dataset.index = obj.index;
  node.style.setProperty("--mask-colour", colour);
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

// The same colours as the overlay (app/services/overlay.py): golden-ratio hues, HSV(h, 0.75, 1).
function maskColour(index) {
  const h = (index * 0.618033988749895) % 1, s = 0.75, v = 1;
  const i = Math.floor(h * 6), f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return `rgb(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)})`;
}

function showEnvelope(response, body) {
  const code = body && body.error_code;
  const details = (body && body.details) || {};
  if (code === "INVALID_IMAGE" && details.reason === "too_large") {
    const limit = details.max_bytes ? ` The limit is ${formatBytes(details.max_bytes)}.` : "";
    return showError("This image is too large", `Choose a smaller file.${limit}`);
  }
  if (code === "INVALID_IMAGE") {
    return showError("This file is not an image the server can read",
      `${body.message}. Use a PNG, JPEG, WebP, BMP or TIFF image.`);
  }
  if (code === "SERVER_BUSY" || response.status === 503) {
    const wait = response.headers.get("Retry-After");
    return showError("The server is busy", `Every slot is taken right now. Try again${wait ? ` in about ${wait} s` : " in a moment"}.`);
  }
  if (code === "INVALID_REQUEST") {
    const fields = (details.errors || []).map((e) => `${e.field || "request"}: ${e.message}`);
    return showError("Some parameters are not valid", fields.join(" · ") || body.message);
  }
  if (response.status === 401 || response.status === 403) {
    document.querySelector("details.params").open = true;
    keyInput.focus();
    return showError("This server needs an API key", "Enter it under Generator parameters → API key.");
  }
  showError(`The segmentation failed (${code || `HTTP ${response.status}`})`, (body && body.message) || "");
}

function showError(title, text) {
  $("error-title").textContent = title;
  $("error-text").textContent = text;
  $("error").hidden = false;
}

function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${bytes} bytes`;
}
