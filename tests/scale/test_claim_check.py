"""Broker mode's claim check end to end: an upload waits in the results storage, the
queue holds about a kilobyte per job whatever the image, and jobs wait while no worker
runs (real redis-server, `python -m app worker`, uvicorn; tests/scale/conftest.py)."""

import json
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from app.services.jobs.celery_app import QUEUE
from app.services.jobs.redis_records import KEY_PREFIX
from tests.images import image_bytes
from tests.job_client import eventually, job, submit, wait_for
from tests.reliability.helpers import assert_envelope, post_image

BIG = image_bytes("BMP", 1200, 900)  # 3.2 MB


def test_jobs_wait_for_a_first_worker_with_their_images_out_of_redis(cluster):
    """...and a job whose record is lost answers JOB_RECORD_LOST, never a bare 404."""
    api = cluster.api()
    client = redis.Redis.from_url(cluster.redis.url)
    staging = cluster.results_dir / ".staging"
    with ThreadPoolExecutor(2) as pool:
        segment = pool.submit(post_image, api.url, BIG, timeout=60, points_per_side="4")
        accepted = submit(api.url, BIG, points_per_side="4").json()["job_id"]
        mismatch, missing, lost = (submit(api.url, image_bytes()).json()["job_id"]
                                   for _ in range(3))
        eventually(lambda: client.llen(QUEUE) == 5)
        lost_waiting = pool.submit(post_image, api.url, image_bytes(), timeout=60)
        eventually(lambda: client.llen(QUEUE) == 6)
        entries = client.lrange(QUEUE, 0, -1)
        assert max(len(entry) for entry in entries) < 2048, [len(e) for e in entries]
        assert client.memory_usage(KEY_PREFIX + accepted) < 512  # its record
        sizes = sorted(path.stat().st_size for path in staging.iterdir())
        assert sizes[-2:] == [len(BIG)] * 2 and len(sizes) == 6  # each image stored once
        (staging / mismatch).write_bytes(b"not the upload")
        (staging / missing).unlink()
        segment_lost = json.loads(entries[0])["headers"]["id"]  # the newest
        client.delete(KEY_PREFIX + lost, KEY_PREFIX + segment_lost)  # as an eviction would
        assert_envelope(lost_waiting.result(), 500, "JOB_RECORD_LOST")  # while it waited
        body = assert_envelope(requests.get(f"{api.url}/jobs/{lost}", timeout=10), 500,
                               "JOB_RECORD_LOST")  # its image still waits: it was accepted
        assert body["details"] == {"job_id": lost}
        assert not segment.done()  # no worker yet: nothing ran
        cluster.worker()
        assert segment.result().status_code == 200, segment.result().text
    assert wait_for(api.url, accepted)["status"] == "succeeded"
    for job_id, reason in ((mismatch, "hash_mismatch"), (missing, "missing")):
        state = wait_for(api.url, job_id)
        assert state["status"] == "failed"
        assert state["error"]["error_code"] == "STAGED_IMAGE_UNUSABLE"
        assert state["error"]["details"] == {"reason": reason, "key": f".staging/{job_id}"}
    # Delivered without a record, a job is recorded as lost instead of vanishing.
    for job_id in (lost, segment_lost):
        eventually(lambda: requests.get(f"{api.url}/jobs/{job_id}", timeout=10).ok)
        assert job(api.url, job_id)["error"]["error_code"] == "JOB_RECORD_LOST"
    # each job's image is removed once its outcome is recorded, whatever the outcome
    eventually(lambda: not any(staging.iterdir()))

