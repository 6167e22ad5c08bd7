"""Job records on disk (embedded mode) and in a real redis-server (broker mode)."""

import os
import time

import pytest
import redis

from app.core.config import Settings
from app.core.errors import BrokerUnavailable, JobRecordUnreadable
from app.schemas.jobs import JobProgress, JobRecord
from app.services.jobs.embedded import INTERRUPTED
from app.services.jobs.redis_records import KEY_PREFIX, RedisJobStore
from app.services.jobs.records import DiskJobStore, now
from app.services.jobs.tracking import tracker

JOB = "3f2c6a1e-1b7a-4c55-9f7e-0d7c1c2a9b10"


@pytest.fixture(params=["disk", "redis"])
def store(request, tmp_path):
    if request.param == "disk":
        return DiskJobStore(tmp_path / ".jobs", ttl_s=3600)
    server = request.getfixturevalue("redis_server")
    return RedisJobStore(redis.Redis.from_url(server.url), ttl_s=3600)


def queued() -> JobRecord:
    return JobRecord(job_id=JOB, status="queued", created_at=now())


def test_a_record_survives_the_round_trip_with_its_progress(store):
    store.create(queued())
    store.update(JOB, lambda r: {"status": "running", "progress": JobProgress(phase="masks_generated",
                                                                              batches_done=0.5)})
    record = store.get(JOB)
    assert record.status == "running" and record.progress.batches_done == 0.5
    assert store.get("0d7c1c2a-1b7a-4c55-9f7e-3f2c6a1e9b10") is None


def test_a_final_record_is_never_changed_again(store):
    store.create(queued())
    store.finish(JOB, status="cancelled")
    assert store.finish(JOB, status="succeeded").status == "cancelled"
    assert store.update(JOB, lambda r: {"status": "running"}).status == "cancelled"
    assert store.get(JOB).finished_at is not None


def test_a_damaged_record_is_an_error_never_a_missing_job(tmp_path):
    DiskJobStore(tmp_path, 3600).create(queued())
    (tmp_path / f"{JOB}.json").write_text('{"job_id": "cut short')
    store = DiskJobStore(tmp_path, 3600)
    assert store.mark_interrupted(INTERRUPTED) == 0  # start-up goes on past it
    with pytest.raises(JobRecordUnreadable) as unreadable:
        store.get(JOB)
    assert unreadable.value.status == 500 and unreadable.value.details == {"job_id": JOB}


def test_unfinished_records_read_interrupted_after_a_restart(tmp_path):
    DiskJobStore(tmp_path, 3600).create(queued())
    again = DiskJobStore(tmp_path, 3600)
    assert again.mark_interrupted(INTERRUPTED) == 1
    record = again.get(JOB)
    assert record.status == "failed" and record.error.details == {"reason": "interrupted"}
    assert record.error_status == 500 and "error_status" not in record.view().model_dump()


def test_final_disk_records_expire_with_the_results(tmp_path):
    store = DiskJobStore(tmp_path, ttl_s=60)
    store.create(queued())
    store.finish(JOB, status="failed")
    assert store.expire() == 0
    old = time.time() - 120
    os.utime(tmp_path / f"{JOB}.json", (old, old))
    assert store.expire() == 1 and store.get(JOB) is None


def test_redis_records_carry_the_results_ttl(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    RedisJobStore(client, ttl_s=3600).create(queued())
    assert 3500 < client.ttl(KEY_PREFIX + JOB) <= 3600


def test_redis_gone_raises_broker_unavailable_quickly(redis_server):
    store = RedisJobStore(redis.Redis.from_url(redis_server.url, socket_connect_timeout=1), 60)
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        store.get(JOB)
    assert time.monotonic() - started < 5


def test_visibility_timeout_exceeds_the_job_timeout():
    settings = Settings(JOB_TIMEOUT_S=600, REDELIVERY_MARGIN_S=60)
    assert settings.visibility_timeout_s == 660
    from app.services.jobs.celery_app import make_celery

    conf = make_celery(Settings(BROKER_URL="redis://127.0.0.1:1/0", JOB_TIMEOUT_S=30)).conf
    assert conf.broker_transport_options["visibility_timeout"] == 90
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.worker_concurrency == 1
    assert conf.worker_pool == "threads"  # no fork after CUDA; control commands answered


def test_progress_that_cannot_be_recorded_does_not_stop_the_job():
    class UnreachableStore:
        def update(self, job_id, change):
            raise BrokerUnavailable("The job broker (Redis) cannot be reached")

    report = tracker(UnreachableStore(), "a-job", "host:1")
    report("masks_generated", 0.5)  # logged, not raised: the job goes on
