"""MaskEngine gives the stock SamAutomaticMaskGenerator's masks: `exact` the same masks,
`fast` (bf16, decisions at working resolution) agreeing ones on the trained sam_tiny.
Correctness only, no timings."""

import copy

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.modeling import Sam

from app.core.config import Settings
from app.services.engine.generator import MaskEngine
from app.services.engine.precision import Bf16Support, PrecisionChoice, choose_precision
from app.services.engine.records import MaskRecord
from app.services.engine.runtime import SamRuntime
from app.services.model.manager import ModelManager
from app.services.model.registry import build_sam_tiny
from bench.mask_agreement import compare_masks, compare_scenes
from sam_tiny.scenes import generate_scene
from tests.conftest import PERMISSIVE_KWARGS as PERMISSIVE
from tests.conftest import REPO
from tests.images import scene_rgb


@pytest.fixture(scope="module")
def trained_sam() -> Sam:
    """The shipped sam_tiny weights: real masks, for measuring agreement."""
    return build_sam_tiny(str(REPO / "app" / "weights" / "sam_tiny.pth")).eval()


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


def _engine(sam: Sam, mode: str = "exact", **params) -> MaskEngine:
    # fast converts the model's encoder to bf16 in place: the shared fixture stays fp32.
    runtime = SamRuntime(copy.deepcopy(sam) if mode == "fast" else sam, PrecisionChoice(mode),
                         compile_model=False)
    return MaskEngine(runtime, **params)


def _stock(sam: Sam, image, **params) -> list[MaskRecord]:
    return [MaskRecord.from_stock(r)
            for r in SamAutomaticMaskGenerator(sam, **params).generate(image)]


def test_exact_engine_matches_stock_generator(sam):
    image = scene_rgb(160, 120)
    stock = _stock(sam, image, **PERMISSIVE)
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


def test_manager_reports_precision_and_serves_the_engine(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("app.services.model.manager.choose_precision",
                        lambda requested, device, model: choose_precision(
                            requested, device, model,
                            support=lambda d: Bf16Support(False, False, "no bf16 here")))
    manager = ModelManager(Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint,
                                    PRECISION="fast", COMPILE_MODEL="off"))

    assert manager.precision == "exact"
    assert "no bf16 here" in manager.precision_fallback_reason
    generator = manager.generator(**PERMISSIVE)
    assert isinstance(generator, MaskEngine)
    records = generator.generate(scene_rgb(64, 48))
    assert records and records[0].mask().shape == (48, 64)


def test_exact_engine_matches_stock_with_crop_layers(sam):
    image = scene_rgb(160, 120)
    params = {**PERMISSIVE, "points_per_side": 6, "crop_n_layers": 1}
    stock = _stock(sam, image, **params)
    ours = _engine(sam, **params).generate(image)

    assert len(stock) >= 10
    assert sorted(r.rle["counts"] for r in ours) == sorted(r.rle["counts"] for r in stock)
    assert sorted(map(tuple, (r.crop_box for r in ours))) == \
        sorted(map(tuple, (r.crop_box for r in stock)))


def test_exact_engine_gives_the_same_masks_one_full_size_mask_at_a_time(sam, monkeypatch):
    image = scene_rgb(160, 120)
    whole = _engine(sam, **PERMISSIVE).generate(image)
    monkeypatch.setattr("app.services.engine.generator._MEMORY_BUDGET", 1)
    one_at_a_time = _engine(sam, **PERMISSIVE).generate(image)

    assert [r.rle["counts"] for r in one_at_a_time] == [r.rle["counts"] for r in whole]


def test_fast_engine_agrees_with_stock_on_the_trained_sam_tiny(trained_sam):
    # The README's filters: the masks a user keeps. Pooled over scenes bigger than
    # the model's input, so fast's upsampling of kept masks to full size is exercised;
    # masks are matched within their own scene.
    params = {"points_per_side": 16, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.8}
    scenes = []
    for seed in range(8):
        image, _ = generate_scene(np.random.default_rng(100 + seed), 384, 512)
        scenes.append((_stock(trained_sam, image, **params),
                       _engine(trained_sam, "fast", **params).generate(image)))

    agreement = compare_scenes(scenes)
    assert agreement.reference_count >= 30
    assert abs(agreement.count_ratio - 1.0) <= 0.05
    assert agreement.mean_matched_iou >= 0.98


def test_a_mask_scored_exactly_at_the_stability_threshold_is_kept_as_by_stock(sam):
    image, few = scene_rgb(80, 60), {**PERMISSIVE, "points_per_side": 4}
    scores = sorted({r.stability_score for r in _stock(sam, image, **few)
                     if 0 < r.stability_score < 1})
    boundary = scores[len(scores) // 2]  # an observed score: the filter's `>=` decides it
    params = {**few, "stability_score_thresh": boundary}
    stock = _stock(sam, image, **params)
    ours = _engine(sam, **params).generate(image)

    assert any(r.stability_score == boundary for r in stock)
    assert sorted(r.rle["counts"] for r in ours) == sorted(r.rle["counts"] for r in stock)


def test_crop_layers_with_no_surviving_mask_return_no_objects(sam):
    # Stock raises IndexError here (its crop NMS indexes an empty box tensor).
    params = {**PERMISSIVE, "points_per_side": 4, "crop_n_layers": 1, "pred_iou_thresh": 1e6}
    assert _engine(sam, **params).generate(scene_rgb(80, 60)) == []


def test_fast_on_an_image_up_to_the_models_input_size_upsamples_whole_masks(
        trained_sam, monkeypatch):
    # Nothing to upsample past the working resolution, so fast takes stock's route for
    # whole masks (cheaper than the per-mask regions there); at the input's own size
    # both routes give the same masks.
    image, _ = generate_scene(np.random.default_rng(7), 192, 256)  # input: 256 x 192
    params = {**PERMISSIVE, "points_per_side": 8}
    engine = _engine(trained_sam, "fast", **params)
    assert not engine._at_working_resolution((192, 256), (192, 256))
    assert not engine._at_working_resolution((192, 256), (96, 128))  # enlarged to the input
    assert engine._at_working_resolution((192, 256), (384, 512))
    whole = engine.generate(image)
    monkeypatch.setattr(MaskEngine, "_at_working_resolution", lambda self, *sizes: True)
    by_region = engine.generate(image)

    assert len(whole) >= 10
    assert [r.rle["counts"] for r in whole] == [r.rle["counts"] for r in by_region]
    np.testing.assert_array_equal([r.stability_score for r in whole],  # NaN: empty mask
                                  [r.stability_score for r in by_region])
