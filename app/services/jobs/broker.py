"""Broker mode (BROKER_URL set): this process is a thin front; Celery workers run jobs.

POST /jobs and POST /segment store the image in the results storage (the claim check,
`claim_check.py`), record the job in Redis, then enqueue a Celery task carrying the
JobRequest (JSON, with the image's key and sha256 instead of its bytes). /segment then
waits for the record to reach a final status. The queue and the records live in Redis,
so an API restart loses nothing; any API replica can answer for any job. A job whose
record Redis lost answers JOB_RECORD_LOST wherever that can be known (its image still
waits, or a waiting /segment sees the record vanish), never a bare 404.
"""

import asyncio
import math
import time
from datetime import datetime, timedelta

import redis

from app.core.config import Settings
from app.core.errors import (BrokerUnavailable, ClientDisconnected, JobFailed, JobRecordLost,
                             SegmentationTimeout, ServerBusy, ServiceError)
from app.core.logging import get_logger
from app.schemas import JobRequest, SegmentResponse
from app.schemas.jobs import JobRecord
from app.services.jobs import IsDisconnected, ModelState, claim_check
from app.services.jobs.celery_app import CONNECT_TIMEOUT_S, QUEUE, SOCKET_TIMEOUT_S, TASK, make_celery
from app.services.jobs.liveness import requeue_if_lost
from app.services.jobs.records import failure, now
from app.services.jobs.redis_records import RedisJobStore, broker_errors
from app.services.metrics import render_metrics, set_broker_state
from app.services.results.retention import results_writable
from app.services.results.storage import open_storage

log = get_logger(__name__)
# Live workers: one member per worker (host:pid) scored with the time of its last
# beat (app.cli.worker), so counting them is one ZCOUNT, never a scan of the keyspace.
# A worker silent for WORKER_LOST_AFTER_S is not counted (it beats three times as often).
WORKERS_KEY = "sam:workers"
MEAN_JOB_KEY = "sam:mean_job_s"
_POLL_S = 0.05  # how often a waiting /segment reads its job record (a Redis GET)


def beat(client: redis.Redis, worker: str, seen_s: float) -> None:
    """A worker says it is alive (and forgets the workers silent for over `seen_s`)."""
    moment = time.time()
    with client.pipeline() as pipe:
        pipe.zadd(WORKERS_KEY, {worker: moment})
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", moment - seen_s)
        pipe.execute()


def lost_record(job_id: str, created_at: str) -> JobRecord:
    """What a worker records for a delivered job that has no record any more."""
    return JobRecord(job_id=job_id, created_at=datetime.fromisoformat(created_at),
                     finished_at=now(), **failure(JobRecordLost(job_id)))


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.BROKER_URL, socket_timeout=SOCKET_TIMEOUT_S,
                                socket_connect_timeout=CONNECT_TIMEOUT_S)


class BrokerJobs:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis_client(settings)
        self.store = RedisJobStore(self.redis, settings.results_ttl_s)
        self.celery = make_celery(settings)
        self.storage = open_storage(settings)

    def state(self) -> dict[str, int]:
        """Queue depth and live workers, read from Redis (BrokerUnavailable if it is gone)."""
        try:
            depth = int(self.redis.llen(QUEUE))
            workers = int(self.redis.zcount(WORKERS_KEY, time.time() - self.settings.WORKER_LOST_AFTER_S,
                                             "+inf"))
        except redis.RedisError as exc:
            raise broker_errors(exc) from exc
        return {"queue_depth": depth, "workers": workers}

    async def readiness(self) -> tuple[bool, dict]:
        """Ready when the broker answers and the results storage is writable (the
        model lives in the workers, which have their own readiness)."""
        try:
            state = await asyncio.to_thread(self.state)
        except BrokerUnavailable:
            state = {"queue_depth": None, "workers": None}
        writable = await results_writable(self.settings)
        reachable = state["queue_depth"] is not None
        return reachable and writable, {"mode": "broker", "broker_reachable": reachable,
                                        "results_writable": writable, **state}

    def model_state(self) -> ModelState:
        # A thin front: the workers load the model and pick the device.
        return ModelState("broker", False, self.settings.DEFAULT_MODEL, "workers",
                          self.settings.PRECISION)

    def metrics(self) -> bytes:
        try:
            state = self.state()
            set_broker_state(state["queue_depth"], state["workers"])
        except BrokerUnavailable:
            pass  # the last values stay; /health/ready says the broker is gone
        return render_metrics(None)

    def expire_records(self) -> int:
        """Redis expires the records itself (each has a TTL); the images of jobs that no
        record can send a worker to any more (what a front that died between storing
        and queueing left) go here, once older than that TTL."""
        removed = claim_check.sweep(self.storage, self.store.ttl_s, time.time())
        if removed:
            log.info("staged_images_expired", removed=removed)
        return 0

    async def shutdown(self) -> None:
        pass  # nothing runs here: queued and running jobs belong to Redis and the workers

    async def submit(self, request: JobRequest) -> JobRecord:
        return await asyncio.to_thread(self._submit, request)

    def get(self, job_id: str) -> JobRecord | None:
        record = self.store.get(job_id)
        if record is None and claim_check.is_staged(self.storage, job_id):
            raise JobRecordLost(job_id)  # accepted (its image waits), but its record is gone
        # The front detects a lost worker too, so a job shows `requeued` with no other worker.
        if record is not None and record.status == "running" and requeue_if_lost(
                self.redis, self.store, self.celery, job_id, self.settings.WORKER_LOST_AFTER_S):
            record = self.store.get(job_id)
        return record

    async def cancel(self, job_id: str) -> JobRecord | None:
        """A queued job is skipped by the worker that takes it; a running one stops at
        its next phase boundary and removes what it wrote."""
        return await asyncio.to_thread(self.store.finish, job_id, status="cancelled")

    async def segment(self, request: JobRequest, is_disconnected: IsDisconnected | None,
                      ) -> SegmentResponse:
        """POST /segment: enqueue, then wait for the job's final record. JOB_TIMEOUT_S
        counts from when a worker started it (the rule of app.services.jobs.queue): past
        it the job is recorded as timed out here, and its worker stops on its next
        progress report."""
        record = await self.submit(request)
        limit = timedelta(seconds=self.settings.JOB_TIMEOUT_S)
        while not record.final:
            if record.started_at is not None and now() - record.started_at > limit:
                timeout = SegmentationTimeout.after(self.settings.JOB_TIMEOUT_S)
                record = await asyncio.to_thread(self.store.finish, request.job_id,
                                                 **failure(timeout))
            elif is_disconnected is not None and await is_disconnected():
                await self.cancel(request.job_id)
                raise ClientDisconnected("The client disconnected while its job was queued")
            else:
                await asyncio.sleep(_POLL_S)
                record = await asyncio.to_thread(self.get, request.job_id)
            if record is None:
                raise JobRecordLost(request.job_id)
        if record.result is not None:
            return record.result
        error = record.error
        raise JobFailed(error.error_code, record.error_status or 500, error.message, error.details)

    def _submit(self, request: JobRequest) -> JobRecord:
        state = self.state()
        # A job sits in the list until a worker takes it, even with one idle: 0 waiting
        # places still lets one job through, as a free slot does in embedded mode.
        if state["queue_depth"] >= max(self.settings.MAX_QUEUED_JOBS, 1):
            raise ServerBusy("The job queue is full", self._retry_after_s(state),
                             queued=state["queue_depth"], workers=state["workers"])
        queued = claim_check.stage(self.storage, request)  # StorageError: nothing queued
        try:
            record = self._enqueue(queued)
        except ServiceError:
            claim_check.release(self.storage, request.job_id)
            raise
        log.info("job_enqueued", job_id=request.job_id, queue_depth=state["queue_depth"] + 1)
        return record

    def _enqueue(self, request: JobRequest) -> JobRecord:
        record = JobRecord(job_id=request.job_id, status="queued", created_at=now())
        self.store.create(record)
        try:
            # A small entry: None fields left out, the body compressed (kombu undoes it),
            # argsrepr (what monitors show) the image's name, not the whole request.
            self.celery.send_task(TASK, args=[request.model_dump_json(exclude_none=True),
                                              record.created_at.isoformat()],
                                  argsrepr=repr([request.file_name[:100]]), compression="zlib",
                                  task_id=request.job_id, queue=QUEUE, retry=True)
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "not queued"
            error = broker_errors(exc)
            self.store.finish(record.job_id, status="failed", error=error.envelope(),
                              error_status=error.status)
            raise error from exc
        return record

    def _retry_after_s(self, state: dict[str, int]) -> int:
        try:
            mean = float(self.redis.get(MEAN_JOB_KEY) or 30)
        except (redis.RedisError, ValueError):
            mean = 30.0
        return max(1, math.ceil(state["queue_depth"] * mean / max(state["workers"], 1)))
