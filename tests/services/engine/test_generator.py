"""MaskEngine gives the stock SamAutomaticMaskGenerator's masks, and PRECISION=fast
falls back to exact where bf16 is not fast. Correctness only, no timings."""

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.modeling import Sam

from app.core.config import Settings
from app.services.engine.generator import MaskEngine
from app.services.engine.precision import PrecisionChoice, choose_precision
from app.services.engine.records import MaskRecord
from app.services.engine.runtime import SamRuntime
from app.services.model.manager import ModelManager
from app.services.model.registry import build_sam_tiny
from bench.mask_agreement import compare_masks
from tests.conftest import PERMISSIVE_KWARGS as PERMISSIVE
from tests.images import scene_rgb


@pytest.fixture(scope="module")
def sam() -> Sam:
    """sam_tiny with seeded random weights drawn wider than the default init (std 0.6):
    default random weights make every point decode to the same mask, so NMS would
    leave one; these give a few dozen distinct masks on the test scene."""
    torch.manual_seed(0)
    model = build_sam_tiny()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.6)
    return model


def _engine(sam: Sam, **params) -> MaskEngine:
    runtime = SamRuntime(sam, PrecisionChoice("exact"), compile_model=False)
    return MaskEngine(runtime, **params)


def test_exact_engine_matches_stock_generator(sam):
    image = scene_rgb(160, 120)
    stock = [MaskRecord.from_stock(r) for r in SamAutomaticMaskGenerator(sam, **PERMISSIVE).generate(image)]
    ours = _engine(sam, **PERMISSIVE).generate(image)

    agreement = compare_masks(stock, ours)
    assert len(stock) >= 10, "the comparison needs many masks to mean anything"
    assert abs(agreement.count_ratio - 1.0) <= 0.01
    assert agreement.matched == len(stock)
    assert agreement.mean_matched_iou >= 0.999
    # The wide weights make scores reach the hundreds, where float rounding in a
    # different (but equivalent) order of operations shows at about 1e-4 relative.
    by_point = {tuple(r.point_coords[0]) + (r.area,): r for r in stock}
    for record in ours:
        twin = by_point[tuple(record.point_coords[0]) + (record.area,)]
        assert record.bbox == twin.bbox
        assert record.predicted_iou == pytest.approx(twin.predicted_iou, rel=1e-3)
        assert record.stability_score == pytest.approx(twin.stability_score, rel=1e-3, nan_ok=True)


def test_exact_engine_matches_stock_with_default_filters_and_small_region_cleanup(sam):
    image = scene_rgb(160, 120)
    params = {"points_per_side": 8, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.5,
              "min_mask_region_area": 50}
    stock = SamAutomaticMaskGenerator(sam, **params).generate(image)
    ours = _engine(sam, **params).generate(image)

    assert len(ours) == len(stock)
    assert sorted(r.mask().tobytes() for r in ours) == \
        sorted(r["segmentation"].tobytes() for r in stock)


def test_engine_returns_no_masks_when_every_mask_is_filtered_out(sam):
    records = _engine(sam, points_per_side=4, pred_iou_thresh=1e9).generate(scene_rgb(64, 48))
    assert records == []


def test_fast_falls_back_to_exact_without_bf16_support():
    def no_bf16(device: torch.device) -> tuple[bool, str]:
        return False, "cpu has none of amx_bf16, avx512_bf16"

    choice = choose_precision("fast", torch.device("cpu"), support=no_bf16)

    assert choice.mode == "exact"
    assert "amx_bf16" in choice.fallback_reason


def test_fast_is_used_where_bf16_is_supported():
    choice = choose_precision("fast", torch.device("cpu"), support=lambda d: (True, "amx_bf16"))
    assert (choice.mode, choice.fallback_reason) == ("fast", None)


def test_manager_reports_precision_and_serves_the_engine(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("app.services.model.manager.choose_precision",
                        lambda requested, device: choose_precision(
                            requested, device, support=lambda d: (False, "no bf16 here")))
    manager = ModelManager(Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint,
                                    PRECISION="fast", COMPILE_MODEL="off"))

    assert manager.precision == "exact"
    assert "no bf16 here" in manager.precision_fallback_reason
    generator = manager.generator(**PERMISSIVE)
    assert isinstance(generator, MaskEngine)
    records = generator.generate(scene_rgb(64, 48))
    assert records and records[0].mask().shape == (48, 64)
