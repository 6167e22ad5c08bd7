"""Shared fixtures: a real sam_tiny checkpoint and a real uvicorn server on 127.0.0.1."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.schemas import GenerationParams
from sam_tiny.random_checkpoint import make_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
# The permissive parameters, defined once: random sam_tiny weights still yield masks
# with the filters off, and a small point grid keeps a generation to about a second.
PERMISSIVE_PARAMS = GenerationParams(points_per_side=8, pred_iou_thresh=0,
                                     stability_score_thresh=0, min_object_pixels=0)
# The same as generator arguments, and as the form fields of POST /segment.
PERMISSIVE_KWARGS = PERMISSIVE_PARAMS.generator_kwargs()
PERMISSIVE = {name: str(value) for name, value in
              PERMISSIVE_PARAMS.model_dump(exclude_defaults=True).items()}


# Fixtures of real backing services (redis-server, moto's S3), shared by every folder.
pytest_plugins = ["tests.backends"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Seeded random sam_tiny weights (the real architecture, real code)."""
    path = tmp_path_factory.mktemp("weights") / "sam_tiny_random.pth"
    make_tiny_checkpoint(path, seed=0)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`uvicorn app.main:app` in a child process, with its own environment."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.results_dir = Path(env.get("RESULTS_DIR", workdir / "results"))
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO",
                    "MODEL_CACHE_DIR": str(workdir / "models"), **env}
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=workdir, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


def stop_process(process: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def tiny_env(checkpoint: Path, workdir: Path) -> dict[str, str]:
    return {"DEFAULT_MODEL": "sam_tiny", "SAM_CHECKPOINT_PATH": str(checkpoint),
            "RESULTS_DIR": str(workdir / "results")}


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_checkpoint):
    """One server for the whole session, default settings, sam_tiny."""
    workdir = tmp_path_factory.mktemp("server")
    live = LiveServer(workdir, tiny_env(tiny_checkpoint, workdir))
    live.wait_ready()
    yield live
    live.stop()


@pytest.fixture
def start_server(tmp_path, tiny_checkpoint):
    """Factory: start_server(**env) -> a ready LiveServer running sam_tiny."""
    servers: list[LiveServer] = []

    def start(wait: bool = True, **env: str) -> LiveServer:
        server = LiveServer(tmp_path, {**tiny_env(tiny_checkpoint, tmp_path), **env})
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


# Module scope, not session: while a sync Playwright driver is open its event loop counts
# as running in this thread, and tests elsewhere that call asyncio.run() would fail.
@pytest.fixture(scope="module")
def playwright():
    """The module's one Playwright driver: its sync API allows one per thread."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def api(playwright):
    """Playwright's APIRequestContext (no browser needed)."""
    context = playwright.request.new_context(timeout=120_000)
    yield context
    context.dispose()
