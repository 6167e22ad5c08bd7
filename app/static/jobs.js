// The async job API from the web page: submit with POST /jobs, follow GET /jobs/{id}
// until the job ends, and show its phase and share of point batches on a progress bar.
// app.js calls `runJob(formData, headers)`, which settles like fetch() + json():
// `{ response, body }`, where body is the /segment answer or the error envelope.
"use strict";

const JOB_POLL_MS = 400;
const PHASES = {
  queued: "Queued, waiting for a free slot",
  requeued: "Its worker was lost: queued again",
  received: "Starting",
  preprocessed: "Reading the image",
  model_loaded: "Loading the model",
  masks_generated: "Generating masks",
  objects_saved: "Saving the objects",
  completed: "Done",
};
// Waiting states sit at the bar's start: a requeued job went back, not forward.
const PHASE_ORDER = Object.keys(PHASES).filter((phase) => phase !== "requeued");

function showJobProgress(state) {
  const bar = document.getElementById("job-progress");
  const label = document.getElementById("job-phase");
  bar.hidden = label.hidden = !state;
  if (!state) return;
  const progress = state.progress || {};
  const waiting = state.status === "queued" || state.status === "requeued";
  const phase = waiting ? state.status : (progress.phase || "received");
  const share = progress.batches_done;
  // The bar: the phases before generation take little; generation fills most of it.
  const base = Math.max(0, PHASE_ORDER.indexOf(phase)) / (PHASE_ORDER.length - 1) * 0.3;
  bar.value = phase === "completed" ? 1 : phase === "masks_generated" && share != null ? 0.1 + 0.85 * share
    : phase === "objects_saved" ? 0.95 : base;
  label.textContent = PHASES[phase] || phase;
  if (phase === "requeued") label.textContent += ` (attempt ${state.attempt})`;
  if (phase === "masks_generated" && share != null) {
    label.textContent += ` · ${Math.round(share * 100)}% of point batches done`;
  }
  announce(PHASES[phase] || phase);  // read out once per phase, not at every poll
}

function announce(text) {
  const status = document.getElementById("status");
  if (status.textContent !== text) status.textContent = text;
}

async function runJob(data, headers) {
  const accepted = await fetch("/jobs", { method: "POST", body: data, headers });
  const acceptedBody = await accepted.json().catch(() => null);
  if (accepted.status !== 202 || !acceptedBody) return { response: accepted, body: acceptedBody };
  showJobProgress({ status: "queued" });
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
      const response = await fetch(acceptedBody.status_url, { headers });
      const state = await response.json().catch(() => null);
      if (!response.ok || !state) return { response, body: state };
      showJobProgress(state);
      if (state.status === "succeeded") return { response, body: state.result };
      if (state.status === "failed" || state.status === "cancelled") {
        const error = state.error || { success: false, error_code: "JOB_CANCELLED", message: "The job was cancelled", details: {} };
        return { response: { ok: false, status: 0, headers: new Headers() }, body: error };
      }
    }
  } finally {
    showJobProgress(null);
  }
}
