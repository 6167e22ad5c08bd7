"""Real backing services for the tests, each on a free loopback port: Debian's
redis-server, and moto's standalone S3 server (moto[server]) reached through boto3."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port


class Backend:
    """A server in a child process; `stop()` takes it away, `start()` brings it back."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir, self.name = workdir, name
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 20) -> "Backend":
        log = open(self.workdir / f"{self.name}.log", "a")
        self.process = subprocess.Popen(self.command(), cwd=self.workdir, stdout=log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.workdir / f'{self.name}.log').read_text()}")
            if self.answers():
                return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not up after {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class RedisServer(Backend):
    """`aof=True`: persistence as the README's broker setup runs it (append-only file,
    fsync every second), kept in `workdir` across `restart()`."""

    def __init__(self, workdir: Path, aof: bool = False) -> None:
        super().__init__(workdir, "redis")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.aof = aof

    def command(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof \
            else ["--appendonly", "no"]
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", *persistence, "--dir", str(self.workdir)]

    def restart(self) -> None:
        """Killed (SIGKILL, as a crash) and started again on the same port and data dir."""
        self.stop()
        self.start()

    def answers(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False


class MotoS3(Backend):
    BUCKET = "sam-results"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "moto")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}

    def command(self) -> list[str]:
        return [sys.executable, "-c", "from moto.server import main; main()",
                "-H", "127.0.0.1", "-p", str(self.port)]

    def answers(self) -> bool:
        try:
            return requests.get(self.endpoint + "/moto-api/", timeout=0.5).status_code < 500
        except requests.RequestException:
            return False

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="test",
                            aws_secret_access_key="test", region_name="us-east-1")

    def create_bucket(self) -> None:
        self.client().create_bucket(Bucket=self.BUCKET)

    def keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.BUCKET)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (make test installs it with apt)")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir).start()
    yield server
    server.stop()


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A moto S3 server with one bucket; this process's boto3 reaches it too."""
    workdir = tmp_path / "moto"
    workdir.mkdir()
    server = MotoS3(workdir).start()
    server.create_bucket()
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()
