"""Worker loss seen in seconds (broker mode), instead of after the visibility timeout.

While a worker runs a job it beats it (`JobBeat`) into the sorted set `sam:running`
(job id -> time of its last beat) every WORKER_LOST_AFTER_S / 3, and keeps the job's
delivery (task arguments and attempt number) in the hash `sam:running:delivery`.
Every worker's watch thread (`watch`), and the API front when it reads a running job,
requeue a job not beaten for WORKER_LOST_AFTER_S: its record reads `requeued` with
`attempt` + 1 and the job is sent again at once. Finding the silent jobs is one
`ZRANGEBYSCORE` over that set, never a scan of the keyspace. Beats are stamped and
judged by Redis' clock, so clock skew between machines does not count.

Race-free: a requeue starts with one Lua script that checks the beat is still old and
removes the entry; of several detectors exactly one gets the delivery back. The dead
worker's own delivery stays unacknowledged (acks_late, the safety net) and comes back
after the visibility timeout with the older attempt number; `task.py` drops it.
"""

import threading
from typing import TYPE_CHECKING

import redis
from celery import Celery
from pydantic import BaseModel

from app.core.config import Settings
from app.core.logging import get_logger
from app.schemas.jobs import JobRecord
from app.services.jobs.celery_app import QUEUE, TASK
from app.services.jobs.records import JobStore
from app.services.jobs.redis_records import broker_errors

if TYPE_CHECKING:  # the API front, which uses requeue_if_lost, never loads the pipeline
    from app.services.pipeline import StopSignal

log = get_logger(__name__)
RUNNING_KEY = "sam:running"
DELIVERIES_KEY = "sam:running:delivery"

# Beats are stamped and judged by Redis' clock, so clock skew between machines
# cannot make a live worker look lost.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""
# KEYS: running, deliveries; ARGV: job id, lost after (s). The delivery when its beat
# is older than that (and the entry is removed), else nil.
_CLAIM = _NOW + """
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not beat or tonumber(beat) > now - tonumber(ARGV[2]) then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
local delivery = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return delivery or false
"""
# KEYS: running, deliveries; ARGV: job id, attempt, beat or end. Beats (or removes)
# the entry only while it is this attempt's: 1, else 0 (another took the job).
_OWN = _NOW + """
local delivery = redis.call('HGET', KEYS[2], ARGV[1])
if not delivery or cjson.decode(delivery)['attempt'] ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == 'end' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
return 1
"""


class Delivery(BaseModel):
    """One delivery of a job: the task's arguments, as the queue message carries them."""

    request_json: str
    created_at: str
    attempt: int = 1

    def args(self) -> list:
        return [self.request_json, self.created_at, self.attempt]


def beat_interval_s(settings: Settings) -> float:
    return settings.WORKER_LOST_AFTER_S / 3


class JobBeat:
    """`with JobBeat(...)`: beat the running job; stop it (`stop`, reason `requeued`)
    when another detector took it, i.e. this worker was judged lost."""

    def __init__(self, client: redis.Redis, job_id: str, delivery: Delivery,
                 interval_s: float, stop: "StopSignal") -> None:
        self.client, self.job_id, self.delivery = client, job_id, delivery
        self.interval_s, self.stop = interval_s, stop
        self._done = threading.Event()
        self._own = client.register_script(_OWN)

    def __enter__(self) -> "JobBeat":
        try:
            self.client.hset(DELIVERIES_KEY, self.job_id, self.delivery.model_dump_json())
            self._call("beat")
        except redis.RedisError as exc:  # the task hands the delivery back (task.execute)
            raise broker_errors(exc) from exc
        self._thread = threading.Thread(target=self._beat, daemon=True, name="job-beat")
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        try:
            self._call("end")
        except redis.RedisError as exc:  # left behind, it is requeued once and skipped as final
            log.warning("job_beat_not_removed", error=str(exc))

    def _beat(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                if not self._call("beat"):
                    log.warning("job_taken_by_another_worker", attempt=self.delivery.attempt)
                    self.stop.stop("requeued")
                    return
            except redis.RedisError as exc:  # keep the job; beat again once Redis is back
                log.warning("job_beat_failed", error=str(exc))

    def _call(self, action: str) -> int:
        return int(self._own(keys=[RUNNING_KEY, DELIVERIES_KEY],
                             args=[self.job_id, self.delivery.attempt, action]))


def requeue_if_lost(client: redis.Redis, store: JobStore, celery: Celery, job_id: str,
                    lost_after_s: float) -> bool:
    """Requeue `job_id` if its worker has not beaten it for `lost_after_s`; whether
    this call did (exactly one of several concurrent callers does)."""
    try:
        raw = client.register_script(_CLAIM)(keys=[RUNNING_KEY, DELIVERIES_KEY],
                                             args=[job_id, lost_after_s])
    except redis.RedisError as exc:
        raise broker_errors(exc) from exc
    if raw is None:
        return False
    lost = Delivery.model_validate_json(raw)
    again = lost.model_copy(update={"attempt": lost.attempt + 1})
    # Sent before the record changes: a worker may start it at once, and then the
    # record already reads the new attempt and the change below does nothing.
    try:
        celery.send_task(TASK, args=again.args(), task_id=job_id, queue=QUEUE, retry=True)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "not queued"
        # The claim is spent: the lost delivery's visibility timeout brings the job back.
        log.error("job_not_requeued", job_id=job_id, error=str(exc))
        raise broker_errors(exc) from exc

    lost_worker: list[str | None] = [None]

    def requeued(record: JobRecord) -> dict:
        if record.status != "running" or record.attempt != lost.attempt:
            return {}
        lost_worker[0] = record.worker
        return {"status": "requeued", "attempt": again.attempt, "started_at": None,
                "worker": None, "progress": None}

    store.update(job_id, requeued)
    log.warning("job_requeued", job_id=job_id, attempt=again.attempt, lost_worker=lost_worker[0])
    return True


def requeue_lost(client: redis.Redis, store: JobStore, celery: Celery,
                 lost_after_s: float) -> int:
    """Requeue every job whose worker went silent; how many this call requeued."""
    seconds, microseconds = client.time()
    stale = client.zrangebyscore(RUNNING_KEY, "-inf", seconds + microseconds / 1e6 - lost_after_s,
                                 start=0, num=100)
    return sum(requeue_if_lost(client, store, celery, job_id.decode(), lost_after_s)
               for job_id in stale)


def watch(client: redis.Redis, store: JobStore, celery: Celery, settings: Settings,
          stop: threading.Event) -> None:
    """A worker's detector thread: runs whether or not the lost worker's job is its own."""
    while not stop.wait(beat_interval_s(settings)):
        try:
            requeue_lost(client, store, celery, settings.WORKER_LOST_AFTER_S)
        except Exception as exc:  # noqa: BLE001 - a detector must outlive any one failure
            log.warning("requeue_check_failed", error=str(exc))
