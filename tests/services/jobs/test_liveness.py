"""Detecting a lost worker's job against a real redis-server: one requeue however many
detectors race, and a worker judged lost stops its job."""

import base64
import json
import threading
import time

import redis

from app.core.config import Settings
from app.schemas.jobs import JobRecord
from app.services.jobs.celery_app import QUEUE, make_celery
from app.services.jobs.liveness import Delivery, JobBeat, requeue_if_lost, requeue_lost
from app.services.jobs.records import now
from app.services.jobs.redis_records import RedisJobStore
from app.services.pipeline import StopSignal

JOB = "3f2c6a1e-1b7a-4c55-9f7e-0d7c1c2a9b10"


def test_racing_detectors_requeue_a_silent_job_once_and_its_worker_stops(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    store, celery = RedisJobStore(client, 3600), make_celery(Settings(BROKER_URL=redis_server.url))
    store.create(JobRecord(job_id=JOB, status="running", created_at=now(), worker="a:1"))
    stop = StopSignal()
    # Beats at once, then every 1.5 s: silent for longer than 0.1 s in between.
    with JobBeat(client, JOB, Delivery(request_json="{}", created_at="t"), 1.5, stop):
        assert not requeue_if_lost(client, store, celery, JOB, lost_after_s=5)  # it beats
        time.sleep(0.3)
        counts: list[int] = []
        racers = [threading.Thread(target=lambda: counts.append(
            requeue_lost(client, store, celery, lost_after_s=0.1))) for _ in range(4)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(10)
        assert stop.wait(3) and stop.reason == "requeued"  # the silent worker was judged lost
    assert sorted(counts) == [0, 0, 0, 1]
    record = store.get(JOB)
    assert (record.status, record.attempt, record.worker, record.started_at) == (
        "requeued", 2, None, None)
    messages = client.lrange(QUEUE, 0, -1)
    assert len(messages) == 1
    args = json.loads(base64.b64decode(json.loads(messages[0])["body"]))[0]
    assert args == ["{}", "t", 2]  # the new delivery carries the new attempt
