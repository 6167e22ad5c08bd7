"""Broker mode end to end: real redis-server, real `python -m app worker` processes on
sam_tiny, real uvicorn fronts (tests/scale/conftest.py)."""

import time

import redis
import requests

from tests.images import image_bytes
from tests.job_client import job, logged, submit, wait_for
from tests.reliability.helpers import assert_envelope, leftovers, post_image

SLOW = {"points_per_side": "40"}
BIG = image_bytes("PNG", 320, 240)


def test_segment_answers_the_same_body_and_the_front_loads_no_model(cluster):
    """...a prompted job runs on the worker with its prompts, and in a shared Redis
    (50,000 unrelated keys) no request lists the keyspace."""
    client = redis.Redis.from_url(cluster.redis.url)
    for start in range(0, 50_000, 5_000):
        client.mset({f"other:app:{i}": "x" for i in range(start, start + 5_000)})
    api = cluster.api()
    cluster.worker()
    client.config_resetstat()
    assert requests.get(api.url + "/health", timeout=5).json() == {
        "status": "ok", "model_loaded": False, "mode": "broker"}
    response = post_image(api.url, image_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["objects_count"] >= 1
    assert body["output_dir"].startswith("results/")
    metadata = requests.get(api.url + body["urls"]["metadata"], timeout=10).json()
    assert metadata["worker"].endswith(f":{cluster.workers[0].pid}")
    ids = [submit(api.url, image_bytes()).json()["job_id"] for _ in range(3)]
    assert [wait_for(api.url, job_id)["status"] for job_id in ids] == ["succeeded"] * 3
    ready = requests.get(api.url + "/health/ready", timeout=10).json()
    assert ready["mode"] == "broker" and ready["broker_reachable"] and ready["workers"] == 1
    metrics = requests.get(api.url + "/metrics", timeout=10).text
    assert "segmentation_queue_depth 0.0" in metrics and "segmentation_workers_seen 1.0" in metrics
    # A prompted job on the same worker: one answer per prompt, in order.
    prompts = '[{"points": [[40, 30]]}, {"box": [10, 10, 90, 70]}]'
    accepted = submit(api.url, image_bytes(), prompts=prompts)
    assert accepted.status_code == 202, accepted.text
    state = wait_for(api.url, accepted.json()["job_id"])
    assert state["status"] == "succeeded", state["error"]
    metadata = requests.get(api.url + state["result"]["urls"]["metadata"], timeout=10).json()
    answered = sorted(metadata["objects"] + metadata["skipped"], key=lambda o: o["prompt_index"])
    assert [o["prompt_index"] for o in answered] == [0, 1]
    assert answered[0]["prompt"]["points"] == [[40, 30]] and answered[1]["prompt"]["box"] == [10, 10, 90, 70]
    commands = client.info("commandstats")
    assert "cmdstat_get" in commands  # the counters did count this test's requests
    assert not {"cmdstat_scan", "cmdstat_keys"} & set(commands), sorted(commands)


def test_two_workers_share_a_burst(cluster):
    api = cluster.api()
    cluster.worker(wait=False), cluster.worker(wait=False)
    for worker in cluster.workers:
        worker.wait_ready()
    ids = [submit(api.url, BIG, points_per_side="16").json()["job_id"] for _ in range(6)]
    states = [wait_for(api.url, job_id, timeout=120) for job_id in ids]
    assert [s["status"] for s in states] == ["succeeded"] * 6
    pids = {int(s["worker"].rsplit(":", 1)[1]) for s in states}
    assert pids == {w.pid for w in cluster.workers}


def test_jobs_queued_across_an_api_restart_complete(cluster):
    """...and a delivery whose job Redis cannot record goes back to the queue (it is
    acknowledged only once its outcome is recorded), so the job still completes."""
    api = cluster.api()
    ids = [submit(api.url, image_bytes()).json()["job_id"] for _ in range(3)]
    api.stop()
    again = cluster.api()
    assert {job(again.url, job_id)["status"] for job_id in ids} == {"queued"}
    client, key = redis.Redis.from_url(cluster.redis.url), f"sam:job:{ids[0]}"
    record = client.get(key)
    client.delete(key)
    client.hset(key, "not", "a record")  # every read of it fails (WRONGTYPE)
    worker = cluster.worker()
    deadline = time.monotonic() + 60
    while not logged(worker.log_path.read_text(), "job_outcome_not_recorded", ids[0]):
        assert time.monotonic() < deadline, "the worker never gave the delivery back"
        time.sleep(0.2)
    client.delete(key)
    client.set(key, record)
    assert [wait_for(again.url, i, timeout=60)["status"] for i in ids] == ["succeeded"] * 3


def test_cancel_a_queued_and_a_running_job(cluster):
    api = cluster.api()
    cluster.worker()
    running = submit(api.url, BIG, **SLOW).json()["job_id"]
    queued = submit(api.url, image_bytes()).json()["job_id"]
    wait_for(api.url, running, {"running"}, timeout=30)
    assert requests.delete(f"{api.url}/jobs/{queued}", timeout=10).json()["status"] == "cancelled"
    assert requests.delete(f"{api.url}/jobs/{running}", timeout=10).json()["status"] == "cancelled"
    follow = submit(api.url, image_bytes()).json()["job_id"]
    assert wait_for(api.url, follow, timeout=60)["status"] == "succeeded"
    assert job(api.url, queued)["started_at"] is None  # skipped by the worker, never run
    assert job(api.url, running)["status"] == "cancelled"
    worker_log = cluster.workers[0].log_path.read_text()  # it stopped, never finishing the job
    assert logged(worker_log, "job_finished", running) and not logged(worker_log, "completed", running)
    folders = [p.name for p in cluster.results_dir.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1 and folders[0].endswith(follow)
    assert leftovers(cluster.results_dir) == []


def test_a_full_queue_answers_server_busy_from_the_broker(cluster):
    api = cluster.api(MAX_QUEUED_JOBS="2")
    for _ in range(2):
        assert submit(api.url, image_bytes()).status_code == 202
    refused = submit(api.url, image_bytes())
    body = assert_envelope(refused, 503, "SERVER_BUSY")
    assert int(refused.headers["Retry-After"]) >= 1 and body["details"]["queued"] == 2


def test_broker_gone_answers_a_clear_503_without_hanging(cluster):
    api = cluster.api()
    accepted = submit(api.url, image_bytes()).json()["job_id"]
    cluster.redis.stop()
    started = time.monotonic()
    assert_envelope(submit(api.url, image_bytes()), 503, "BROKER_UNAVAILABLE")
    assert_envelope(post_image(api.url, image_bytes()), 503, "BROKER_UNAVAILABLE")
    assert_envelope(requests.get(f"{api.url}/jobs/{accepted}", timeout=30), 503, "BROKER_UNAVAILABLE")
    ready = assert_envelope(requests.get(api.url + "/health/ready", timeout=30), 503, "NOT_READY")
    assert ready["details"]["broker_reachable"] is False
    assert time.monotonic() - started < 30


def test_a_worker_reads_not_ready_while_redis_is_gone_and_ready_when_it_is_back(cluster):
    worker = cluster.worker(WORKER_LOST_AFTER_S="3")  # it beats every second
    cluster.redis.stop()
    assert _eventually(lambda: not worker.ready_file.exists(), 25), "still ready without Redis"
    cluster.redis.start()
    assert _eventually(worker.ready_file.exists, 25), "not ready again after Redis came back"
    api = cluster.api()
    assert wait_for(api.url, submit(api.url, image_bytes()).json()["job_id"])["status"] == "succeeded"


def _eventually(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
