"""Broker mode with the real parts: redis-server, `python -m app worker` processes
running sam_tiny, and uvicorn fronts, all on loopback."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, LiveServer, stop_process


class Worker:
    """`python -m app worker` in a child process."""

    def __init__(self, workdir: Path, env: dict[str, str], number: int) -> None:
        self.ready_file = workdir / f"worker{number}.ready"
        self.log_path = workdir / f"worker{number}.log"
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO",
                    "WORKER_READY_FILE": str(self.ready_file), **env}
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=workdir,
                                        env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()}")
            if self.ready_file.exists():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s: {self.log_path.read_text()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


@pytest.fixture
def cluster(tmp_path, tiny_checkpoint, redis_server):
    """`cluster.api(**env)` and `cluster.worker(**env)` share one Redis and one RESULTS_DIR."""

    class Cluster:
        redis = redis_server
        results_dir = tmp_path / "results"
        env = {"DEFAULT_MODEL": "sam_tiny", "SAM_CHECKPOINT_PATH": str(tiny_checkpoint),
               "RESULTS_DIR": str(tmp_path / "results"), "BROKER_URL": redis_server.url,
               "MODEL_CACHE_DIR": str(tmp_path / "models")}
        apis: list[LiveServer] = []
        workers: list[Worker] = []

        def api(self, wait: bool = True, **env: str) -> LiveServer:
            server = LiveServer(tmp_path, {**self.env, **env})
            self.apis.append(server)
            if wait:
                server.wait_ready()
            return server

        def worker(self, wait: bool = True, **env: str) -> Worker:
            worker = Worker(tmp_path, {**self.env, **env}, len(self.workers))
            self.workers.append(worker)
            return worker.wait_ready() if wait else worker

    cluster = Cluster()
    yield cluster
    for worker in cluster.workers:
        worker.stop()
    for api in cluster.apis:
        api.stop()
