"""Embedded mode (no BROKER_URL): jobs run in this process, through the job queue.

POST /jobs records the job on disk and runs it as a background task; its progress
and outcome go into the record. A process that stops leaves its unfinished records
behind: at the next start they read `failed` with reason `interrupted`.
"""

import asyncio
from functools import partial

from app.core.config import Settings
from app.core.errors import JobInterrupted
from app.core.logging import bind_job, get_logger
from app.schemas import JobRequest, SegmentResponse
from app.schemas.jobs import JobRecord
from app.services.identity import worker_name
from app.services.jobs import IsDisconnected, ModelState
from app.services.jobs.queue import Admission, JobQueue
from app.services.jobs.records import DiskJobStore, failure, now
from app.services.jobs.tracking import record_outcome, tracker
from app.services.metrics import jobs_in_flight, render_metrics, set_queue_state
from app.services.model.bootstrap import prepare_model
from app.services.model.manager import ModelManager
from app.services.pipeline import JobResult, Progress, discard_result, run_job
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

    @classmethod
    async def start(cls, settings: Settings) -> "EmbeddedJobs":
        """Prepare the model (the one start-up sequence), then take jobs."""
        manager = await prepare_model(settings)
        queue = JobQueue(settings.MAX_CONCURRENT_JOBS, settings.MAX_QUEUED_JOBS,
                         settings.JOB_TIMEOUT_S)
        return cls(settings, manager, queue)

    async def readiness(self) -> tuple[bool, dict]:
        """Ready when the model is loaded and the results folder is writable."""
        writable = await results_writable(self.settings)
        state = {"mode": "embedded", "model_loaded": self.manager.loaded,
                 "results_writable": writable, "jobs_running": self.queue.running,
                 "jobs_waiting": self.queue.waiting}
        return self.manager.loaded and writable, state

    def model_state(self) -> ModelState:
        m = self.manager
        return ModelState("embedded", m.loaded, m.model_type, m.device, m.precision,
                          m.precision_fallback_reason, m.precision_reason)

    def metrics(self) -> bytes:
        set_queue_state(self.queue.running, self.queue.waiting)
        m = self.manager
        return render_metrics(None if m.load_seconds is None
                              else (m.model_type, m.device, m.load_seconds))

    def expire_records(self) -> int:
        return self.store.expire()

    async def segment(self, request: JobRequest, is_disconnected: IsDisconnected | None,
                      ) -> SegmentResponse:
        """POST /segment: run the job and wait for it (no job record)."""
        return segment_response(await self._queued(request, is_disconnected))

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

    async def shutdown(self) -> None:
        """Stop the background jobs (their records read `interrupted`), then wait for
        running threads, which clean up when they end."""
        for job_id, task in list(self._tasks.items()):
            task.cancel()
            await asyncio.to_thread(self.store.finish, job_id, **failure(INTERRUPTED))
        unfinished = await self.queue.drain(self.settings.JOB_TIMEOUT_S)
        log.info("shutdown", jobs_unfinished=unfinished)

    async def _queued(self, request: JobRequest, is_disconnected: IsDisconnected | None = None,
                      progress: Progress | None = None, admission: Admission | None = None,
                      created=None) -> JobResult:
        """The one place a job's blocking work leaves the event loop: a worker thread
        of the queue, which bounds concurrency, waiting and run time."""
        bind_job(request.job_id)  # bound here, so the request's error log line carries it too
        with jobs_in_flight():
            work = partial(run_job, request, self.manager, self.settings, progress,
                           created=created)
            discard = partial(discard_result, self.settings)
            return await self.queue.run(work, discard, is_disconnected, admission)

    async def _run(self, request: JobRequest, record: JobRecord, admission: Admission) -> None:
        progress = tracker(self.store, record.job_id, worker_name())
        result = error = None
        try:
            result = await self._queued(request, progress=progress, admission=admission,
                                        created=record.created_at)
        except asyncio.CancelledError:
            return  # cancelled: the record says so already; the queue discards any result
        except Exception as exc:  # noqa: BLE001 - record_outcome turns it into the envelope
            error = exc
        await asyncio.to_thread(record_outcome, self.store, self.settings, record.job_id,
                                result, error)
