"""A job's life in its record, for both runners (embedded and workers): its progress
(the pipeline's `Progress` callback) and its outcome (`record_outcome`, the one place
a finished, failed, cancelled or timed-out job is written down)."""

import time

from app.core.config import Settings
from app.core.errors import JobAbandoned, SegmentationTimeout, ServiceError
from app.core.logging import get_logger
from app.schemas.jobs import JobProgress, JobRecord
from app.services.jobs.records import JobStore, failure, now
from app.services.metrics import observe_job
from app.services.pipeline import JobResult, Progress, StopSignal, discard_result
from app.services.results.answer import segment_response

log = get_logger(__name__)

# Progress within the mask generation phase is written at most this often.
_MIN_INTERVAL_S = 0.25


def start_fields(worker: str) -> dict:
    """What changes when a job starts running."""
    return {"status": "running", "started_at": now(), "worker": worker,
            "progress": JobProgress(phase="received")}


def tracker(store: JobStore, job_id: str, worker: str, stop: StopSignal | None = None,
            ) -> Progress:
    """Report each phase (and the share of point batches done) into the job's record;
    stops the job (`stop`) once its record is final: cancelled, or timed out by the
    front that waits for it."""
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
        if stop is not None and record is not None and record.final:
            stop.stop("cancelled" if record.status == "cancelled" else "timeout")

    return report


def record_outcome(store: JobStore, settings: Settings, job_id: str,
                   result: JobResult | None, error: BaseException | None,
                   attempt: int | None = None) -> JobRecord | None:
    """Write the job's final status: its answer, or the error as the usual envelope.
    A record already final (cancelled meanwhile) stays as it is, and then a result
    written meanwhile is removed, so a cancelled job leaves nothing behind. With
    `attempt` (workers), a record that moved on to a later run is left to that run,
    folder included (both runs write the same folder name)."""
    final = store.finish(job_id, attempt, **_outcome(settings, result, error))
    if final is not None and attempt is not None and final.attempt != attempt:
        log.warning("job_outcome_superseded", attempt=attempt, current_attempt=final.attempt)
        return None
    if result is not None and (final is None or final.status != "succeeded"):
        discard_result(settings, result)
    if final is not None:
        observe_job(final)
    return final


def _outcome(settings: Settings, result: JobResult | None, error: BaseException | None) -> dict:
    if error is None and result is not None:
        return {"status": "succeeded", "result": segment_response(result)}
    if isinstance(error, JobAbandoned) and error.reason == "cancelled":
        return {"status": "cancelled"}
    if isinstance(error, JobAbandoned):
        error = SegmentationTimeout.after(settings.JOB_TIMEOUT_S)
    if not isinstance(error, ServiceError):  # a job must never vanish without a status
        log.error("job_crashed", exc_info=error)  # the details stay in the server's log
        error = ServiceError("The job failed unexpectedly")
    return failure(error)
