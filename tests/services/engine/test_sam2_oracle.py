"""`exact` SAM 2.1 equals Meta's own code: automatic masks against
`SAM2AutomaticMaskGenerator`, prompted masks against `SAM2ImagePredictor.predict`, on
seeded random weights of the real decoder (tiny trunk; see tests/sam2_oracle.py)."""

import numpy as np
import pytest

pytest.importorskip("sam2", reason="the test-only oracle (make install-dev installs it)")

from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402

from app.schemas.prompts import Prompt  # noqa: E402
from app.services.engine.precision import PrecisionChoice  # noqa: E402
from app.services.engine.records import MaskRecord  # noqa: E402
from app.services.engine.sam2.generator import Sam2MaskEngine  # noqa: E402
from app.services.engine.sam2.prompted import Sam2PromptedEngine  # noqa: E402
from app.services.engine.sam2.runtime import Sam2Runtime  # noqa: E402
from app.services.model.sam2_weights import build_sam2, load_meta_checkpoint  # noqa: E402
from bench.mask_agreement import compare_masks, rle_iou_matrix  # noqa: E402
from tests.sam2_oracle import TINY_TRUNK  # noqa: E402

FILTERS_OFF = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


@pytest.fixture(scope="module")
def models(sam2_tiny_meta):
    """Meta's model and ours, from one seeded checkpoint in Meta's published format."""
    meta, checkpoint = sam2_tiny_meta
    ours = build_sam2(TINY_TRUNK)
    load_meta_checkpoint(ours, checkpoint)
    # batches of 4 prompts: less padding to decode, and more than one batch per image
    return meta, Sam2Runtime(ours, PrecisionChoice("exact"), batch_size=4)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(3)
    img = np.full((90, 120, 3), 40, np.uint8)
    img[20:70, 30:90] = (200, 60, 50)  # a square, and noise, on a non-square image
    return np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)


def _agreement(meta, runtime, image, **params):
    reference = [MaskRecord.from_stock(r)
                 for r in SAM2AutomaticMaskGenerator(meta, **params).generate(image)]
    return compare_masks(reference, Sam2MaskEngine(runtime, **params).generate(image))


def test_automatic_masks_equal_meta_generator_with_filters_off(models, image):
    # box NMS off too: random weights give overlapping masks, and all 27 are compared.
    agreement = _agreement(*models, image, points_per_side=3, box_nms_thresh=1.0, **FILTERS_OFF)
    assert agreement.reference_count == agreement.candidate_count == 27
    assert agreement.matched == 27 and agreement.mean_matched_iou >= 0.99


def _threshold_keeping(runtime, image, kept: int, **params) -> float:
    """A predicted-IoU threshold that keeps the `kept` best of the unfiltered masks,
    half-way between two scores that float rounding cannot confuse."""
    masks = Sam2MaskEngine(runtime, **params, **FILTERS_OFF).generate(image)
    scores = sorted((r.predicted_iou for r in masks), reverse=True)
    assert scores[kept - 1] - scores[kept] > 1e-4
    return (scores[kept - 1] + scores[kept]) / 2


def _count_upscaled(runtime, monkeypatch) -> list[int]:
    """The number of prompts each call of the runtime's mask upscaling receives."""
    calls, real_upscale = [], runtime._upscale
    monkeypatch.setattr(runtime, "_upscale",
                        lambda q, *rest: calls.append(len(q)) or real_upscale(q, *rest))
    return calls


def test_only_prompts_passing_the_iou_filter_are_upscaled_and_masks_stay_meta(
        models, image, monkeypatch):
    meta, runtime = models
    grid = {"points_per_side": 3, "box_nms_thresh": 1.0}  # 9 prompts, 27 masks
    threshold = _threshold_keeping(runtime, image, 3, **grid)
    upscaled = _count_upscaled(runtime, monkeypatch)
    agreement = _agreement(meta, runtime, image, **grid, pred_iou_thresh=threshold,
                           stability_score_thresh=0.0)
    assert agreement.reference_count == agreement.candidate_count == agreement.matched == 3
    assert agreement.mean_matched_iou >= 0.99
    assert 0 < len(upscaled) * runtime.upscale_batch <= 3  # of 9 prompts


def test_m2m_refines_every_mask_before_the_iou_filter_as_meta_does(models, image, monkeypatch):
    # The IoU filter reads the refined masks' scores, so every prompt is upscaled first;
    # then the filter and box NMS, as Meta's generator.
    meta, runtime = models
    grid = {"points_per_side": 2, "use_m2m": True}  # 4 prompts, 12 masks
    threshold = _threshold_keeping(runtime, image, 6, box_nms_thresh=1.0, **grid)
    upscaled = _count_upscaled(runtime, monkeypatch)
    agreement = _agreement(meta, runtime, image, **grid, pred_iou_thresh=threshold,
                           stability_score_thresh=0.0)
    assert agreement.candidate_count == agreement.reference_count >= 1
    assert agreement.matched == agreement.reference_count and agreement.mean_matched_iou >= 0.99
    assert len(upscaled) * runtime.upscale_batch == 4


PROMPTS = {
    "point": Prompt(points=[(40, 30)]),  # one point: three candidates, the best kept
    "points": Prompt(points=[(40, 30), (100, 80)], labels=[1, 0]),
    "box": Prompt(box=(25, 15, 95, 75)),
    "point_and_box": Prompt(points=[(60, 45)], box=(25, 15, 95, 75)),
}


@pytest.fixture(scope="module")
def prompted(models, image):
    """Meta's predictor and our prompted engine, each encoding the image once."""
    meta, runtime = models
    predictor = SAM2ImagePredictor(meta)
    predictor.set_image(image)
    ours = Sam2PromptedEngine(runtime).generate(image, list(PROMPTS.values()))
    return predictor, dict(zip(PROMPTS, ours))


@pytest.mark.parametrize("name", PROMPTS)
def test_prompted_mask_equals_meta_predictor(prompted, name):
    predictor, ours = prompted
    prompt = PROMPTS[name]
    multimask = len(prompt.points) == 1 and prompt.box is None
    masks, scores, _ = predictor.predict(
        point_coords=np.array(prompt.points) if prompt.points else None,
        point_labels=np.array(prompt.labels) if prompt.points else None,
        box=None if prompt.box is None else np.array(prompt.box),
        multimask_output=multimask)
    expected = masks[int(np.argmax(scores))].astype(bool)
    record = ours[name]
    assert rle_iou_matrix([record.rle], [MaskRecord.from_stock(
        {"segmentation": expected, **_fields(record)}).rle])[0, 0] >= 0.98
    assert record.predicted_iou == pytest.approx(float(scores.max()), abs=1e-4)


def _fields(record: MaskRecord) -> dict:
    return {name: getattr(record, name) for name in MaskRecord.__dataclass_fields__ if name != "rle"}
