"""The one-time weights download, against a checkpoint server on 127.0.0.1."""

import asyncio
import hashlib
import subprocess
import sys
import textwrap

import pytest

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.services.model.bootstrap import ensure_model_ready
from tests.conftest import REPO, free_port
from tests.weights_server import WeightsServer


@pytest.fixture
def checkpoint_bytes(tiny_checkpoint) -> bytes:
    return tiny_checkpoint.read_bytes()


def tiny_mirror_settings(tmp_path, url: str, payload: bytes) -> Settings:
    return Settings(DEFAULT_MODEL="sam_tiny", MODEL_CACHE_DIR=tmp_path / "cache",
                    SAM_CHECKPOINT_URL=url,
                    SAM_CHECKPOINT_SHA256=hashlib.sha256(payload).hexdigest()[:6])


def test_first_start_downloads_and_second_start_makes_no_request(tmp_path, checkpoint_bytes):
    with WeightsServer(checkpoint_bytes) as server:
        settings = tiny_mirror_settings(tmp_path, server.url, checkpoint_bytes)
        path = asyncio.run(ensure_model_ready("sam_tiny", settings))
        assert path.read_bytes() == checkpoint_bytes and server.requests == 1
        asyncio.run(ensure_model_ready("sam_tiny", settings))
        assert server.requests == 1
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == ["sam_tiny.pth"]


def test_wrong_checksum_stops_startup_and_leaves_no_file(tmp_path):
    payload = b"not the official vit_b weights" * 1000
    with WeightsServer(payload) as server:
        settings = Settings(DEFAULT_MODEL="vit_b", MODEL_CACHE_DIR=tmp_path, SAM_CHECKPOINT_URL=server.url)
        with pytest.raises(ModelLoadFailed) as failure:
            asyncio.run(ensure_model_ready("vit_b", settings))
    assert "does not start with 01ec64" in failure.value.details["reason"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_unreachable_server_names_url_cache_path_and_remedies(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/sam_vit_b_01ec64.pth"
    settings = Settings(DEFAULT_MODEL="vit_b", MODEL_CACHE_DIR=tmp_path, SAM_CHECKPOINT_URL=url)
    with pytest.raises(ModelLoadFailed) as failure:
        asyncio.run(ensure_model_ready("vit_b", settings))
    details = failure.value.details
    assert details["url"] == url and details["cache_path"] == str(tmp_path / "sam_vit_b_01ec64.pth")
    remedies = " ".join(details["remedies"])
    for remedy in ("network", "SAM_CHECKPOINT_URL", "by hand", "SAM_CHECKPOINT_PATH"):
        assert remedy in remedies


def test_two_processes_starting_at_once_download_once(tmp_path, checkpoint_bytes):
    starter = textwrap.dedent("""
        import asyncio, sys
        from app.core.config import Settings
        from app.services.model.bootstrap import ensure_model_ready
        settings = Settings(DEFAULT_MODEL="sam_tiny", MODEL_CACHE_DIR=sys.argv[1],
                            SAM_CHECKPOINT_URL=sys.argv[2], SAM_CHECKPOINT_SHA256=sys.argv[3])
        print(asyncio.run(ensure_model_ready("sam_tiny", settings)))
    """)
    sha = hashlib.sha256(checkpoint_bytes).hexdigest()
    with WeightsServer(checkpoint_bytes, delay_s=0.01) as server:
        processes = [subprocess.Popen([sys.executable, "-c", starter, str(tmp_path), server.url, sha],
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert server.requests == 1
    assert (tmp_path / "sam_tiny.pth").read_bytes() == checkpoint_bytes


def test_server_refuses_to_start_when_weights_cannot_be_fetched(start_server):
    url = f"http://127.0.0.1:{free_port()}/sam_vit_b_01ec64.pth"
    server = start_server(wait=False, DEFAULT_MODEL="vit_b", SAM_CHECKPOINT_PATH="",
                          SAM_CHECKPOINT_URL=url)
    assert server.process.wait(timeout=60) != 0
    log = server.log()
    assert '"startup_failed"' in log and "MODEL_LOAD_FAILED" in log and url in log
    assert "SAM_CHECKPOINT_PATH" in log
