// The web page: choose an image, send it to the job API (jobs.js) with the parameters
// typed (fields built by rules.js), then show the result (results.js) or say what went
// wrong, naming and marking the fields at fault.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("segment-form");
const input = $("image-input");
const dropzone = $("dropzone");
const keyInput = $("api-key");
let chosenFile = null;

keyInput.value = sessionStorage.getItem("apiKey") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("apiKey", keyInput.value));

function headers() {
  return keyInput.value ? { "X-API-Key": keyInput.value } : {};
}

// A new file replaces everything shown for the last one: its image, result and error.
function choose(file) {
  chosenFile = file || null;
  clearMessages();
  forgetResult();
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.hidden = $("prompt-area").hidden = true;  // shown on load (prompts.js): not for a
  // file the browser cannot show, which must not leave the last image there to point at
  preview.removeAttribute("src");
  if (file) preview.src = URL.createObjectURL(file);
  $("file-name").textContent = file ? `${file.name} · ${formatBytes(file.size)}` : fileHint;
  dropzone.classList.toggle("has-file", Boolean(file));
}

$("preview").addEventListener("load", () => { $("preview").hidden = false; });
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
form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));

form.addEventListener("submit", (event) => { event.preventDefault(); segment({}); });
// Segment everything, or only what `extra.marks` point at (prompts.js calls window.segment).
window.segment = segment;
async function segment(extra) {
  clearMessages();
  forgetResult();
  if (!chosenFile) return showError("No image chosen", "Pick an image file or drop one on the box first.");
  const data = new FormData();
  data.append("image", chosenFile, chosenFile.name);
  const typos = [];
  for (const field of $("param-grid").querySelectorAll("input[name]")) {
    const value = field.value.trim();
    if (value === "") continue;
    const number = Number(value);
    if (field.dataset.type === "boolean") {
      if (!/^(true|false)$/i.test(value)) typos.push({ field: field.name, message: "not true or false" });
    } else if (!Number.isFinite(number) || (field.dataset.type === "integer" && !Number.isInteger(number))) {
      typos.push({ field: field.name, message: field.dataset.type === "integer" ? "not a whole number" : "not a number" });
    }
    data.append(field.name, value);  // every field typed is sent: the server says what does not apply
  }
  if (typos.length) return showFieldErrors(typos);
  for (const [name, value] of Object.entries(extra)) data.append(name, value);
  setBusy(true);
  try {
    const { response, body } = await runJob(data, headers());  // jobs.js: POST /jobs + progress
    if (!response.ok || !body || body.success === false) return showEnvelope(response, body);
    await showResult(body);
    announce(`Done: ${body.objects_count} object${body.objects_count === 1 ? "" : "s"} found`);
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
  $("elapsed").textContent = "";
  if (!busy) return;
  announce("Segmenting…");
  const started = performance.now();
  busyTimer = setInterval(() => {
    $("elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(0)} s`;
  }, 500);
}

function showEnvelope(response, body) {
  const code = body && body.error_code;
  const details = (body && body.details) || {};
  if (code === "INVALID_IMAGE" && details.reason === "too_large") {
    const limit = details.max_bytes ? ` The limit is ${formatBytes(details.max_bytes)}.` : "";
    return showError("This image is too large", `Choose a smaller file.${limit}`);
  }
  if (code === "INVALID_IMAGE" && details.reason === "too_many_pixels") {
    const megapixels = (n) => `${(n / 1e6).toLocaleString(undefined, { maximumFractionDigits: 1 })} megapixels`;
    return showError("This image has too many pixels",
      `It is ${details.width} × ${details.height} (${megapixels(details.width * details.height)}); ` +
      `the server takes up to ${megapixels(details.max_pixels)}. Scale it down and try again.`);
  }
  if (code === "INVALID_IMAGE") {
    return showError("This file is not an image the server can read",
      `${body.message}. Use a ${imageFormats} image.`);
  }
  if (code === "SERVER_BUSY" || response.status === 503) {
    const wait = response.headers.get("Retry-After");
    return showError("The server is busy", `Every slot is taken right now. Try again${wait ? ` in about ${wait} s` : " in a moment"}.`);
  }
  if (code === "INVALID_REQUEST" && (details.errors || []).length) return showFieldErrors(details.errors);
  if (response.status === 401 || response.status === 403) {
    document.querySelector("details.params").open = true;
    keyInput.focus();
    return showError("This server needs an API key", "Enter it under Generator parameters → API key.");
  }
  showError(`The segmentation failed (${code || `HTTP ${response.status}`})`, (body && body.message) || "");
}

// Errors that name request fields: told with the fields' labels, the fields marked.
function showFieldErrors(errors) {
  const fields = errors.map((e) => form.querySelector(`[name="${CSS.escape(e.field || "")}"]`)).filter(Boolean);
  for (const field of fields) field.setAttribute("aria-invalid", "true");
  if (fields.some((f) => $("param-grid").contains(f))) document.querySelector("details.params").open = true;
  showError("Some parameters are not valid",
    errors.map((e) => `${e.field ? labelOf(e.field) : "Request"}: ${e.message}`).join(" · "));
  if (fields.length) fields[0].focus({ preventScroll: true });
}

function showError(title, text) {
  announce("");  // the alert is what is read out now
  $("error-title").textContent = title;
  $("error-text").textContent = text;
  $("error").hidden = false;
  $("error").scrollIntoView({ block: "nearest" });  // it sits below the form: bring it up
}

function clearMessages() {
  announce("");
  $("error").hidden = true;
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${bytes} bytes`;
}
