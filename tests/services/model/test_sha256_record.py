"""SAM 2.1 weights have no published sha256: the first download's is recorded beside
the file and checked at every later start."""

import asyncio

import pytest

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.services.model.bootstrap import ensure_model_ready
from tests.weights_server import WeightsServer

PAYLOAD = b"meta-format sam2.1 weights stand-in" * 1000


def _settings(tmp_path, url: str, **extra) -> Settings:
    return Settings(DEFAULT_MODEL="sam2.1_hiera_tiny", MODEL_CACHE_DIR=tmp_path,
                    SAM_CHECKPOINT_URL=url, **extra)


def test_first_download_records_its_sha256_and_later_starts_check_it(tmp_path):
    with WeightsServer(PAYLOAD) as server:
        settings = _settings(tmp_path, server.url)
        path = asyncio.run(ensure_model_ready("sam2.1_hiera_tiny", settings))
        record = path.with_name("sam2.1_hiera_tiny.pt.sha256")
        assert record.is_file() and server.requests == 1
        asyncio.run(ensure_model_ready("sam2.1_hiera_tiny", settings))  # checks, no request
        assert server.requests == 1
        path.write_bytes(PAYLOAD[:-1] + b"!")  # changed on disk
        with pytest.raises(ModelLoadFailed) as failure:
            asyncio.run(ensure_model_ready("sam2.1_hiera_tiny", settings))
        assert "recorded at its first download" in failure.value.message
        assert failure.value.details["expected"] == record.read_text().strip()


def test_configured_sha256_overrides_the_record(tmp_path):
    with WeightsServer(PAYLOAD) as server:
        path = asyncio.run(ensure_model_ready("sam2.1_hiera_tiny", _settings(tmp_path, server.url)))
    with pytest.raises(ModelLoadFailed) as failure:
        asyncio.run(ensure_model_ready("sam2.1_hiera_tiny",
                                       _settings(tmp_path, "http://127.0.0.1:9/x",
                                                 SAM_CHECKPOINT_SHA256="abcdef")))
    assert "SAM_CHECKPOINT_SHA256" in failure.value.message and path.is_file()
