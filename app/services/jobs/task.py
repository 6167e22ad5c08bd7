"""The worker's side of broker mode: run one delivered job and record its outcome.

A delivery is idempotent: a job already final (cancelled while queued, or finished
by a worker that died before acknowledging) is skipped, and so is a delivery older
than the record's `attempt` (the lost worker's own message, back after the visibility
timeout once `liveness` requeued the job). A job whose earlier worker died is run
again and its folder name (from the job's `created_at`) is the same, so the re-run
replaces what was left and a job never ends up with two folders. While it runs, the
job is beaten (`liveness.JobBeat`) so that its loss is seen in seconds.
"""

import threading
import time
from dataclasses import dataclass
from datetime import datetime

import redis
from celery.exceptions import Reject
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from app.core.config import Settings
from app.core.errors import BrokerUnavailable
from app.core.logging import bind_job, get_logger
from app.schemas import JobRequest
from app.services.identity import worker_name
from app.services.jobs import claim_check
from app.services.jobs.broker import MEAN_JOB_KEY, lost_record
from app.services.jobs.liveness import Delivery, JobBeat, beat_interval_s
from app.services.jobs.redis_records import RedisJobStore
from app.services.jobs.tracking import record_outcome, start_fields, tracker
from app.services.model.manager import ModelManager
from app.services.pipeline import JobResult, StopSignal, run_job
from app.services.results.storage import open_storage

log = get_logger(__name__)


@dataclass
class WorkerRuntime:
    """What a worker process holds for its whole life (set once at start)."""

    settings: Settings
    manager: ModelManager
    store: RedisJobStore
    redis: redis.Redis


_runtime: WorkerRuntime | None = None


def configure(runtime: WorkerRuntime) -> None:
    global _runtime
    _runtime = runtime


def execute(request_json: str, created_at: str, attempt: int = 1) -> None:
    """The Celery task body. The delivery is acknowledged once the job's outcome is
    recorded; when Redis cannot record it (after a few tries), the delivery is handed
    back to the queue, so the job runs again instead of staying `running` for good."""
    try:
        _execute(_runtime, Delivery(request_json=request_json, created_at=created_at,
                                    attempt=attempt))
    except BrokerUnavailable as exc:
        log.error("job_outcome_not_recorded", error=exc.message)
        raise Reject(exc.message, requeue=True) from exc


# A short Redis outage should not cost a whole re-run: retry the record keeping first.
_recorded = retry(retry=retry_if_exception_type(BrokerUnavailable), reraise=True,
                  stop=stop_after_attempt(4), wait=wait_exponential(multiplier=0.5, max=4))


def _execute(runtime: WorkerRuntime, delivery: Delivery) -> None:
    request, attempt = JobRequest.model_validate_json(delivery.request_json), delivery.attempt
    bind_job(request.job_id)
    record = _recorded(runtime.store.get)(request.job_id)
    storage = open_storage(runtime.settings)
    if record is None or record.final or attempt < record.attempt:
        log.info("job_skipped", status=None if record is None else record.status,
                 attempt=attempt, current_attempt=None if record is None else record.attempt)
        if record is None:  # the client reads JOB_RECORD_LOST, not a bare 404
            _recorded(runtime.store.create)(lost_record(request.job_id, delivery.created_at))
        if record is None or record.final:  # not for a stale attempt: a newer one needs it
            claim_check.release(storage, request.job_id)
        return
    worker = worker_name()
    _recorded(runtime.store.update)(request.job_id, lambda r: {} if r.attempt > attempt else {
        **start_fields(worker), "attempt": attempt})
    log.info("job_started", worker=worker, attempt=attempt,
             redelivered=record.status in ("running", "requeued"))
    stop = StopSignal()
    result: JobResult | None = None
    error: Exception | None = None
    began = time.monotonic()
    # Beating until the outcome is recorded: a worker lost before that is seen too.
    with JobBeat(runtime.redis, request.job_id, delivery, beat_interval_s(runtime.settings),
                 stop):
        # JOB_TIMEOUT_S counts from here, when the job starts running (jobs/queue.py).
        timer = threading.Timer(runtime.settings.JOB_TIMEOUT_S, stop.stop, args=("timeout",))
        timer.start()
        try:
            progress = tracker(runtime.store, request.job_id, worker, stop)
            request = claim_check.redeem(storage, request)
            result = run_job(request, runtime.manager, runtime.settings, progress, stop,
                             created=datetime.fromisoformat(delivery.created_at))
        except Exception as exc:  # noqa: BLE001 - record_outcome turns it into the envelope
            error = exc
        finally:
            timer.cancel()
        final = _recorded(record_outcome)(runtime.store, runtime.settings, request.job_id,
                                          result, error, attempt)
    if final is not None:  # the job ended: its image was kept until now for a re-delivery
        claim_check.release(storage, request.job_id)
        log.info("job_finished", status=final.status)
    _update_mean(runtime.redis, time.monotonic() - began)


def _update_mean(client: redis.Redis, seconds: float) -> None:
    """A moving average of job run time, for the front's Retry-After."""
    try:
        mean = float(client.get(MEAN_JOB_KEY) or seconds)
        client.set(MEAN_JOB_KEY, round(0.7 * mean + 0.3 * seconds, 2))
    except (redis.RedisError, ValueError):
        pass
