"""ModelManager: where weights come from, loading once, failing clearly."""

from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.services.model.manager import ModelManager, checkpoint_path
from app.services.model.registry import BUNDLED_WEIGHTS_DIR, MODEL_REGISTRY


def test_official_models_are_cached_under_their_official_names(tmp_path):
    settings = Settings(MODEL_CACHE_DIR=tmp_path)
    assert checkpoint_path("vit_b", settings) == tmp_path / "sam_vit_b_01ec64.pth"
    for spec in MODEL_REGISTRY.values():
        if spec.url:
            assert spec.url.endswith(spec.checkpoint_name)
            assert spec.sha256_prefix in spec.checkpoint_name


def test_explicit_checkpoint_path_wins(tmp_path):
    settings = Settings(MODEL_CACHE_DIR=tmp_path, SAM_CHECKPOINT_PATH=Path("/weights/mine.pth"))
    assert checkpoint_path("vit_h", settings) == Path("/weights/mine.pth")


def test_sam_tiny_uses_bundled_weights_unless_a_mirror_is_set(tmp_path):
    assert checkpoint_path("sam_tiny", Settings()) == BUNDLED_WEIGHTS_DIR / "sam_tiny.pth"
    mirrored = Settings(MODEL_CACHE_DIR=tmp_path, SAM_CHECKPOINT_URL="http://127.0.0.1/x.pth")
    assert checkpoint_path("sam_tiny", mirrored) == tmp_path / "sam_tiny.pth"


def test_model_is_loaded_once_and_reloaded_after_unload(tiny_checkpoint):
    manager = ModelManager(Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint))
    first = manager.model()
    assert manager.model() is first and manager.loaded
    manager.unload()
    assert not manager.loaded and manager.model() is not first


def test_corrupt_checkpoint_raises_model_load_failed(tmp_path):
    corrupt = tmp_path / "sam_tiny.pth"
    corrupt.write_bytes(b"PK\x03\x04 this is not a torch checkpoint")
    manager = ModelManager(Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=corrupt))
    with pytest.raises(ModelLoadFailed) as failure:
        manager.model()
    assert failure.value.status == 502 and failure.value.details["checkpoint"] == str(corrupt)


def test_cuda_requested_without_a_gpu_fails_with_remedy():
    with pytest.raises(ModelLoadFailed) as failure:
        ModelManager(Settings(DEVICE="cuda"))
    assert "DEVICE=cpu" in failure.value.details["remedies"][0]
