"""A worker lost mid-job is seen in seconds, not after the visibility timeout: real
redis-server, `python -m app worker` processes on sam_tiny, a uvicorn front, moto S3."""

import os
import signal
import subprocess
import time

import redis

from app.services.jobs.celery_app import QUEUE
from tests.images import image_bytes
from tests.job_client import job, logged, submit, wait_for

# A visibility timeout of 660 s: a job requeued within the test was requeued by liveness.
LOST_FAST = {"JOB_TIMEOUT_S": "600", "WORKER_LOST_AFTER_S": "3"}


def test_a_killed_workers_job_is_requeued_in_seconds_and_its_old_delivery_is_dropped(cluster, s3):
    env = {**LOST_FAST, "RESULTS_DIR": f"s3://{s3.BUCKET}/team"}
    api = cluster.api(**env)
    first = cluster.worker(**env)
    # Long enough to be killed mid-job (about 2 s of generation on sam_tiny).
    job_id = submit(api.url, image_bytes("PNG", 320, 240), points_per_side="24").json()["job_id"]
    wait_for(api.url, job_id, {"running"}, timeout=30)
    time.sleep(0.5)
    os.kill(first.pid, signal.SIGKILL)
    killed = time.monotonic()
    # No other worker yet: the front itself sees the silent job and requeues it.
    lost = wait_for(api.url, job_id, {"requeued"}, timeout=15)
    assert time.monotonic() - killed < 3 + 5, "not requeued within seconds"
    assert lost["attempt"] == 2 and lost["worker"] is None and lost["started_at"] is None
    # Before any worker takes the new delivery, the dead worker's unacknowledged one
    # (attempt 1, kept by acks_late) comes back, as if its visibility timeout had
    # passed (kombu restores entries older than it): the next worker must drop it.
    client = redis.Redis.from_url(cluster.redis.url)
    again = client.rpop(QUEUE)
    assert again is not None and client.llen(QUEUE) == 0
    unacked = client.zrange("unacked_index", 0, -1)
    assert unacked, "the killed worker's delivery is no longer held back (acks_late)"
    client.zadd("unacked_index", {tag: 0 for tag in unacked})
    second = cluster.worker(**env)
    deadline = time.monotonic() + 30
    while not logged(second.log_path.read_text(), "job_skipped", job_id):
        assert time.monotonic() < deadline, "the old delivery never came back"
        time.sleep(0.2)
    assert job(api.url, job_id)["status"] == "requeued"
    client.lpush(QUEUE, again)
    state = wait_for(api.url, job_id, timeout=90)
    assert state["status"] == "succeeded", state["error"]
    assert state["attempt"] == 2 and state["worker"].endswith(f":{second.pid}")
    assert second.log_path.read_text().count('"job_started"') == 1  # run once more, not twice
    # kill -9 leaves the ready file, but its age tells (the documented probe, with the
    # test's shorter age: one heartbeat and a margin).
    beat_s = float(env["WORKER_LOST_AFTER_S"]) / 3  # how often a worker beats
    time.sleep(max(0.0, killed + beat_s + 2 - time.monotonic()))
    assert [_fresh(w.ready_file, beat_s + 2) for w in (first, second)] == [False, True]
    folder = state["result"]["output_dir"].rsplit("/", 1)[1]
    keys = [k for k in s3.keys()  # a queued image goes just after the job's record ends
            if k != f"team/.index/{job_id}" and not k.startswith("team/.staging/")]
    assert {k.split("/")[1] for k in keys} == {folder}
    assert len(keys) == 3 + 2 * state["result"]["objects_count"]


def _fresh(ready_file, age_s: float) -> bool:
    found = subprocess.run(["find", str(ready_file), "-newermt", f"-{age_s:g} seconds"],
                           capture_output=True, text=True, timeout=10, check=True)
    return found.stdout.strip() != ""
