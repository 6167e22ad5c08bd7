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


def test_iou_filter_before_upscaling_keeps_meta_generator_masks(models, image):
    # Only prompts with a mask above the IoU threshold are upscaled: a threshold between
    # the two middle predicted IoUs (float rounding cannot cross it) keeps Meta's half.
    meta, runtime = models
    unfiltered = Sam2MaskEngine(runtime, points_per_side=3, box_nms_thresh=1.0,
                                **FILTERS_OFF).generate(image)
    scores = sorted(r.predicted_iou for r in unfiltered)
    threshold = (scores[13] + scores[14]) / 2
    agreement = _agreement(meta, runtime, image, points_per_side=3, box_nms_thresh=1.0,
                           pred_iou_thresh=threshold, stability_score_thresh=0.0)
    assert 0 < agreement.reference_count < 27
    assert agreement.candidate_count == agreement.matched == agreement.reference_count
    assert agreement.mean_matched_iou >= 0.99


def test_automatic_masks_with_m2m_and_nms_equal_meta_generator(models, image):
    # one point: its three candidates each refined (m2m), then box NMS between them
    agreement = _agreement(*models, image, points_per_side=1, use_m2m=True, **FILTERS_OFF)
    assert agreement.candidate_count == agreement.reference_count >= 1
    assert agreement.mean_matched_iou >= 0.99


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
