"""Recovery around the real generator: CUDA OOM and predictor failures are retried once."""

import pytest
import torch

from app.core.config import Settings
from app.core.errors import SegmentationFailed
from app.services.model.recovery import generate_masks
from app.services.model.manager import ModelManager
from tests.images import scene_rgb

from tests.conftest import PERMISSIVE_KWARGS as PARAMS


@pytest.fixture
def manager(tiny_checkpoint) -> ModelManager:
    return ModelManager(Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint))


def fail_encoder(manager: ModelManager, times: int, error: Exception) -> None:
    """Make the real image encoder raise `error` on its next `times` calls."""
    remaining = {"n": times}

    def hook(module, inputs):
        if remaining["n"] > 0:
            remaining["n"] -= 1
            raise error

    manager.model().image_encoder.register_forward_pre_hook(hook)


def test_simulated_oom_unloads_reloads_and_records_the_retry(manager):
    first_model = manager.model()
    records, retries = generate_masks(manager, scene_rgb(), PARAMS, simulate_oom=True)
    assert records and [r.reason for r in retries] == ["cuda_out_of_memory"]
    assert manager.model() is not first_model  # rebuilt from the cached weights


def test_predictor_error_rebuilds_the_model_and_retries_once(manager):
    fail_encoder(manager, times=1, error=RuntimeError("corrupted state"))
    records, retries = generate_masks(manager, scene_rgb(), PARAMS)
    assert records
    assert [r.model_dump() for r in retries] == [
        {"attempt": 1, "reason": "predictor_error", "error": "corrupted state"}]


def test_a_bug_in_our_code_is_not_retried_and_keeps_the_model(manager):
    model = manager.model()
    fail_encoder(manager, times=1, error=TypeError("a bug of ours"))
    with pytest.raises(TypeError):
        generate_masks(manager, scene_rgb(), PARAMS)
    assert manager.model() is model  # no unload, no reload


def test_second_oom_gives_segmentation_failed(manager):
    fail_encoder(manager, times=1, error=torch.cuda.OutOfMemoryError("CUDA out of memory"))
    # simulate_oom fails attempt 1; the hook is gone with the unloaded model, so
    # re-arm it on the reloaded model through a generator factory that fails again.
    original = manager.generator

    def failing_generator(**params):
        generator = original(**params)
        fail_encoder(manager, times=1, error=torch.cuda.OutOfMemoryError("CUDA out of memory"))
        return generator

    manager.generator = failing_generator
    with pytest.raises(SegmentationFailed) as failure:
        generate_masks(manager, scene_rgb(), PARAMS)
    assert failure.value.details["reason"] == "cuda_out_of_memory"
    assert failure.value.status == 500
