"""A job's progress, reported into its record: the pipeline's `Progress` callback for
the job API (embedded and workers alike)."""

import threading
import time

from app.schemas.jobs import JobProgress, JobRecord
from app.services.jobs.store import JobStore, now
from app.services.pipeline import Progress

# Progress within the mask generation phase is written at most this often.
_MIN_INTERVAL_S = 0.25


def start_fields(worker: str) -> dict:
    """What changes when a job starts running."""
    return {"status": "running", "started_at": now(), "worker": worker,
            "progress": JobProgress(phase="received")}


def tracker(store: JobStore, job_id: str, worker: str,
            cancel: threading.Event | None = None) -> Progress:
    """Report each phase (and the share of point batches done) into the job's record;
    sets `cancel` once the record says the job was cancelled."""
    last = 0.0

    def report(phase: str, share: float | None) -> None:
        nonlocal last
        moment = time.monotonic()
        if share is not None and 0 < share < 1 and moment - last < _MIN_INTERVAL_S:
            return
        last = moment

        def change(record: JobRecord) -> dict:
            fields = {"progress": JobProgress(phase=phase, batches_done=share)}
            return {**start_fields(worker), **fields} if record.status == "queued" else fields

        record = store.update(job_id, change)
        if cancel is not None and record is not None and record.status == "cancelled":
            cancel.set()

    return report
