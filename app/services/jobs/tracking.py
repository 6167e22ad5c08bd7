"""A job's progress, reported into its record: the pipeline's `Progress` callback for
the job API (embedded and workers alike)."""

import threading
import time

from app.core.errors import ServiceError
from app.core.logging import get_logger
from app.schemas.jobs import JobProgress, JobRecord
from app.services.jobs.store import JobStore, now
from app.core.config import Settings
from app.services.pipeline import JobResult, Progress, discard_result

log = get_logger(__name__)

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

        try:
            record = store.update(job_id, change)
        except (ServiceError, OSError) as exc:  # progress is best-effort: the job goes on
            log.warning("progress_not_recorded", phase=phase, error=str(exc))
            return
        if cancel is not None and record is not None and record.status == "cancelled":
            cancel.set()

    return report


def drop_unless_succeeded(settings: Settings, result: JobResult | None,
                          final: JobRecord | None) -> None:
    """A job cancelled while its folder was being written ends `cancelled` with a
    folder on disk: remove it, so a cancelled job leaves nothing behind."""
    if result is not None and (final is None or final.status != "succeeded"):
        discard_result(settings, result)
