"""Injected faults: a flaky weights server, a corrupt cached checkpoint, OFFLINE,
a read-only and a full results disk, SIGTERM during a job."""

import asyncio
import hashlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.services.model.bootstrap import ensure_model_ready
from app.services.model.download import ensure_checkpoint
from tests.images import encode, image_bytes
from tests.reliability import helpers
from tests.reliability.helpers import assert_envelope, leftovers, post_image, record_figure
from tests.weights_server import WeightsServer


def _fetch(server: WeightsServer, dest, sha: str | None, attempts: int = 3):
    return asyncio.run(ensure_checkpoint(server.url, dest, sha, 30, connect_timeout_s=1,
                                         read_timeout_s=0.5, attempts=attempts))


@pytest.fixture
def payload(tiny_checkpoint) -> bytes:
    return tiny_checkpoint.read_bytes()


def test_download_dropped_mid_body_is_retried_until_it_succeeds(tmp_path, payload):
    with WeightsServer(payload, faults=["drop", "drop"]) as server:
        path = _fetch(server, tmp_path / "w.pth", hashlib.sha256(payload).hexdigest()[:8])
    assert path.read_bytes() == payload and server.requests == 3


def test_download_that_hangs_fails_after_the_read_timeout_with_remedies(tmp_path, payload):
    started = time.monotonic()
    with WeightsServer(payload, faults=["hang", "hang"]) as server:
        with pytest.raises(ModelLoadFailed) as failure:
            _fetch(server, tmp_path / "w.pth", None, attempts=2)
    seconds = time.monotonic() - started
    assert server.requests == 2 and seconds < 3
    assert "Timeout" in failure.value.details["reason"] and failure.value.details["remedies"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    record_figure("hanging_download_2_attempts_s", round(seconds, 2))


def test_download_with_wrong_bytes_is_retried_then_refused(tmp_path):
    with WeightsServer(b"wrong bytes" * 1000) as server:
        with pytest.raises(ModelLoadFailed) as failure:
            _fetch(server, tmp_path / "w.pth", "01ec64")
    assert server.requests == 3 and "does not start with 01ec64" in failure.value.details["reason"]


def test_offline_never_touches_the_network_and_names_the_remedies(tmp_path, payload):
    with WeightsServer(payload) as weights:
        settings = Settings(DEFAULT_MODEL="vit_b", MODEL_CACHE_DIR=tmp_path, OFFLINE=True,
                            SAM_CHECKPOINT_URL=weights.url)
        started = time.monotonic()
        with pytest.raises(ModelLoadFailed) as failure:
            asyncio.run(ensure_model_ready("vit_b", settings))
        assert weights.requests == 0 and time.monotonic() - started < 1
    assert any("OFFLINE" in remedy for remedy in failure.value.details["remedies"])


def test_corrupt_cached_checkpoint_is_moved_aside_and_downloaded_again(start_server, tmp_path, payload):
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / "sam_tiny.pth").write_bytes(payload[: len(payload) // 3])  # truncated
    with WeightsServer(payload) as weights:
        server = start_server(SAM_CHECKPOINT_PATH="", SAM_CHECKPOINT_URL=weights.url,
                              SAM_CHECKPOINT_SHA256=hashlib.sha256(payload).hexdigest()[:8])
        assert weights.requests == 1
    assert "checkpoint_corrupt_redownloading" in server.log()
    assert (cache / "sam_tiny.pth").read_bytes() == payload
    assert len(list(cache.glob("sam_tiny.pth.corrupt-*"))) == 1
    assert post_image(server.url, image_bytes()).status_code == 200


def test_read_only_results_disk_gives_storage_error_and_not_ready(start_server, tmpfs):
    results = tmpfs("ro,size=1m")
    server = start_server(RESULTS_DIR=str(results))
    ready = assert_envelope(requests.get(server.url + "/health/ready", timeout=5), 503, "NOT_READY")
    assert ready["details"]["results_writable"] is False
    body = assert_envelope(post_image(server.url, image_bytes()), 507, "STORAGE_ERROR")
    assert "Read-only file system" in body["details"]["reason"]
    assert list(results.iterdir()) == []


def test_full_results_disk_gives_storage_error_and_leaves_no_partial_folder(start_server, tmpfs):
    results = tmpfs("size=256k")
    server = start_server(RESULTS_DIR=str(results))
    (results / "filler").write_bytes(b"\0" * (256 * 1024 - 48 * 1024))
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    body = assert_envelope(post_image(server.url, encode(noise)), 507, "STORAGE_ERROR")
    assert body["details"]["results_dir"] == str(results)
    assert helpers.results(results) == ["filler"] and leftovers(results) == []


def _wait_for(server, event: str, timeout: float = 60) -> None:
    """Wait until the server has logged `event` (a job's phase: `event` names the phase)."""
    deadline = time.monotonic() + timeout
    while f'"event": "{event}"' not in server.log():
        assert time.monotonic() < deadline, f"{event} never logged"
        time.sleep(0.05)


def test_sigterm_during_a_job_lets_it_finish_then_exits_cleanly(start_server):
    server = start_server()
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(post_image, server.url, image_bytes("PNG", 320, 240), points_per_side="12")
        _wait_for(server, "preprocessed")
        server.process.send_signal(signal.SIGTERM)
        response = job.result()
    assert response.status_code == 200, response.text
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises it
    folder = server.results_dir / response.json()["output_dir"].split("/")[-1]
    assert (folder / "metadata.json").is_file() and leftovers(server.results_dir) == []


def test_sigterm_past_the_graceful_timeout_discards_the_job_and_leaves_nothing(start_server):
    server = start_server(UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN="1")
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(post_image, server.url, image_bytes("PNG", 320, 240), points_per_side="40")
        _wait_for(server, "preprocessed")
        server.process.send_signal(signal.SIGTERM)
        try:
            response = job.result()
            assert response.status_code != 200
        except requests.RequestException:
            pass  # cut off: the client sees a closed connection
    assert server.process.wait(timeout=120) in (0, -signal.SIGTERM)
    log = server.log()
    assert "job_cancelled" in log and "abandoned_job_ended" in log
    assert helpers.results(server.results_dir) == [] and leftovers(server.results_dir) == []
