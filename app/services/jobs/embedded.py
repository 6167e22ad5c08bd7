"""Embedded mode (no BROKER_URL): jobs run in this process, through the job queue.

POST /jobs records the job on disk and runs it as a background task; its progress
and outcome go into the record. A process that stops leaves its unfinished records
behind: at the next start they read `failed` with reason `interrupted`.
"""

import asyncio

from app.core.config import Settings
from app.core.errors import JobInterrupted, ServiceError
from app.core.logging import get_logger
from app.schemas import JobRequest, SegmentResponse
from app.schemas.jobs import JobRecord
from app.services.identity import worker_name
from app.services.job_queue import Admission, JobQueue
from app.services.jobs.store import DiskJobStore, failure, now
from app.services.jobs.tracking import drop_unless_succeeded, tracker
from app.services.metrics import observe_job, set_queue_state
from app.services.model.manager import ModelManager
from app.services.pipeline import segment_image
from app.services.results.answer import segment_response
from app.services.results.retention import results_writable

log = get_logger(__name__)
INTERRUPTED = JobInterrupted("The server stopped while this job was queued or running; "
                             "submit it again", {"reason": "interrupted"})


class EmbeddedJobs:
    def __init__(self, settings: Settings, manager: ModelManager, queue: JobQueue) -> None:
        self.settings, self.manager, self.queue = settings, manager, queue
        self.store = DiskJobStore(settings.jobs_dir, settings.results_ttl_s)
        self._tasks: dict[str, asyncio.Task] = {}
        interrupted = self.store.mark_interrupted(INTERRUPTED)
        if interrupted:
            log.warning("jobs_interrupted", count=interrupted)

    async def readiness(self) -> tuple[bool, dict]:
        """Ready when the model is loaded and the results folder is writable."""
        writable = await results_writable(self.settings)
        state = {"mode": "embedded", "model_loaded": self.manager.loaded,
                 "results_writable": writable, "jobs_running": self.queue.running,
                 "jobs_waiting": self.queue.waiting}
        return self.manager.loaded and writable, state

    def refresh_gauges(self) -> None:
        set_queue_state(self.queue.running, self.queue.waiting)

    async def segment(self, request: JobRequest, is_disconnected) -> SegmentResponse:
        """POST /segment: run the job and wait for it (no job record)."""
        result = await segment_image(request, self.manager, self.settings, self.queue,
                                     is_disconnected)
        return segment_response(result)

    async def submit(self, request: JobRequest) -> JobRecord:
        """POST /jobs: record the job and start it in the background."""
        admission = self.queue.admit()
        record = JobRecord(job_id=request.job_id, status="queued", created_at=now())
        try:
            await asyncio.to_thread(self.store.create, record)
        except BaseException:
            admission.release()
            raise
        task = asyncio.create_task(self._run(request, record, admission))
        self._tasks[record.job_id] = task

        def ended(_: asyncio.Task) -> None:
            admission.release()  # a job cancelled before it reached the queue
            self._tasks.pop(record.job_id, None)

        task.add_done_callback(ended)
        return record

    def get(self, job_id: str) -> JobRecord | None:
        return self.store.get(job_id)

    async def cancel(self, job_id: str) -> JobRecord | None:
        record = await asyncio.to_thread(self.store.finish, job_id, status="cancelled")
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()  # a queued job leaves the queue; a running one is abandoned
        return record

    async def _run(self, request: JobRequest, record: JobRecord, admission: Admission) -> None:
        progress = tracker(self.store, record.job_id, worker_name())
        result = None
        try:
            result = await segment_image(request, self.manager, self.settings, self.queue,
                                         progress=progress, created=record.created_at,
                                         admission=admission)
            fields = {"status": "succeeded", "result": segment_response(result)}
        except ServiceError as exc:
            fields = failure(exc)
        except asyncio.CancelledError:
            return  # cancelled: the record says so already; the queue discards any result
        except Exception as exc:  # noqa: BLE001 - a job must never vanish without a status
            log.exception("job_crashed", job_id=record.job_id)
            fields = failure(ServiceError(f"The job failed unexpectedly: {exc}"))
        try:
            final = await asyncio.to_thread(self.store.finish, record.job_id, **fields)
        except asyncio.CancelledError:  # DELETE came just as the job finished
            final = self.store.get(record.job_id)
        await asyncio.to_thread(drop_unless_succeeded, self.settings, result, final)
        if final is not None:
            observe_job(final)

    async def close(self) -> None:
        """At shutdown: stop the background jobs; their records read `interrupted`."""
        for job_id, task in list(self._tasks.items()):
            task.cancel()
            await asyncio.to_thread(self.store.finish, job_id, **failure(INTERRUPTED))
