"""Operating broker mode: Redis with AOF, as the README runs it, restarted under a
running job and queued ones loses nothing; `celery inspect` reaches a worker while it
runs a job; Celery's own log lines never carry another job's id (real redis-server,
`python -m app worker`, uvicorn; tests/scale/conftest.py)."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import requests

from app.services.results import layout
from tests.backends import RedisServer
from tests.conftest import REPO
from tests.images import image_bytes
from tests.job_client import eventually, job, submit, wait_for
from tests.reliability.helpers import leftovers

BIG = image_bytes("PNG", 320, 240)


@pytest.fixture
def redis_server(tmp_path):
    """This module's cluster runs on Redis with AOF (it overrides tests/backends.py's)."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir, aof=True).start()
    yield server
    server.stop()


def test_a_busy_worker_survives_a_redis_restart_and_answers_celery_inspect(cluster, tmp_path):
    api = cluster.api()
    worker = cluster.worker()
    running = submit(api.url, BIG, points_per_side="24").json()["job_id"]
    queued = [submit(api.url, image_bytes()).json()["job_id"] for _ in range(2)]
    wait_for(api.url, running, {"running"}, timeout=60)
    restarted = datetime.now(timezone.utc)
    cluster.redis.restart()  # with AOF: while one job runs and two wait
    states = [wait_for(api.url, job_id, timeout=90) for job_id in [running, *queued]]
    assert [s["status"] for s in states] == ["succeeded"] * 3, [s["error"] for s in states]
    assert datetime.fromisoformat(states[0]["finished_at"]) > restarted  # it was running
    folders = [p.name for p in cluster.results_dir.iterdir() if not p.name.startswith(".")]
    assert sorted(layout.job_id_of(f) for f in folders) == sorted([running, *queued])
    assert leftovers(cluster.results_dir) == []
    eventually(lambda: not any((cluster.results_dir / ".staging").iterdir()))

    busy = submit(api.url, BIG, points_per_side="64").json()["job_id"]
    wait_for(api.url, busy, {"running"}, timeout=30)
    # As the README says it, from anywhere with the same settings (no model, no torch).
    inspect = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "app.services.jobs.celery_app", "inspect",
         "active", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), "BROKER_URL": cluster.redis.url})
    assert inspect.returncode == 0, inspect.stderr
    (node, active), = json.loads(inspect.stdout).items()
    assert node.endswith(f":{worker.pid}") and [task["id"] for task in active] == [busy]
    assert active[0]["name"] == "sam.segment"
    assert job(api.url, busy)["status"] == "running"  # it answered while the job ran
    requests.delete(f"{api.url}/jobs/{busy}", timeout=10)

    # The worker's thread ran job after job: Celery's lines name only their own job.
    records = [json.loads(line) for line in worker.log_path.read_text().splitlines()
               if line.startswith("{")]
    for job_id in queued:
        lines = [r for r in records if r["logger"].startswith("celery") and job_id in r["event"]]
        assert {r["logger"] for r in lines} >= {"celery.worker.strategy", "celery.app.trace"}
        assert [r for r in lines if r.get("job_id") not in (None, job_id)] == []
