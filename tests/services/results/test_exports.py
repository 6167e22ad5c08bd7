"""COCO RLE, polygons and the COCO dataset built from a job's metadata."""

import json

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from app.schemas import GenerationParams, ImageInfo, JobMetadata, SavedObject, Timings
from app.services.engine.records import encode_rle
from app.services.results.exports import coco_dataset, coco_rle, mask_to_polygons, polygons_are_exact


def rectangle_mask() -> np.ndarray:
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    return mask


def test_rle_decodes_back_to_the_same_mask():
    mask = rectangle_mask()
    mask[0, 0] = mask[59, 79] = True  # corners: run lengths at both ends
    rle = coco_rle(encode_rle(mask)).model_dump()
    assert rle["size"] == [60, 80] and isinstance(rle["counts"], str)
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    assert json.loads(json.dumps(rle)) == rle


def ring_mask() -> np.ndarray:
    mask = rectangle_mask()
    mask[15:25, 30:40] = False
    return mask


def test_polygon_of_a_rectangle_runs_along_its_pixel_edges():
    assert mask_to_polygons(rectangle_mask()) == [[20, 10, 20, 30, 50, 30, 50, 10]]


def test_each_separate_region_gets_its_own_polygon_even_a_single_pixel():
    mask = rectangle_mask()
    mask[40:55, 5:15] = True
    mask[59, 79] = True  # a pixel in the corner of the image
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 3 and all(len(p) >= 8 and len(p) % 2 == 0 for p in polygons)
    assert [79, 59, 79, 60, 80, 60, 80, 59] in polygons


def test_polygons_decode_to_exactly_the_pixels_of_masks_without_holes():
    rng = np.random.default_rng(0)
    holes = 0
    for _ in range(50):
        mask = np.zeros((60, 80), np.uint8)
        for _ in range(rng.integers(1, 4)):  # overlapping, touching, diagonal-touching blobs, rings
            centre, axes = (int(rng.integers(0, 80)), int(rng.integers(0, 60))), rng.integers(0, 20, 2)
            cv2.ellipse(mask, centre, axes.tolist(), 0, 0, 360, 1, -1)
            if rng.random() < 0.3:
                cv2.ellipse(mask, centre, (axes // 2).tolist(), 0, 0, 360, 0, -1)
        mask = mask.astype(bool)
        _, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        has_hole = bool((hierarchy[0][:, 3] >= 0).any())  # a contour inside another
        assert polygons_are_exact(saved(0, mask)) is not has_hole
        holes += has_hole
    assert 5 < holes < 45

def saved(index: int, mask: np.ndarray) -> SavedObject:
    return SavedObject(index=index, area=int(mask.sum()), bbox=[0, 0, 1, 1], predicted_iou=0.9,
                       stability_score=0.9, point_coords=[[0.0, 0.0]], crop_box=[0, 0, 80, 60],
                       rle=coco_rle(encode_rle(mask)), polygons=mask_to_polygons(mask),
                       mask_file=f"mask_{index}.png", object_file=f"object_{index}.png")


def coco_of(masks: list[np.ndarray], form: str, tmp_path) -> COCO:
    metadata = JobMetadata(
        job_id="j", created_at="2026-01-01T00:00:00+00:00", model_type="sam_tiny", device="cpu",
        image=ImageInfo(file_name="photo.jpg", width=80, height=60, format="JPEG", mode="RGB"),
        precision="exact", precision_fallback_reason=None, parameters=GenerationParams().applied(0),
        timings_ms=Timings(received=0, preprocessed=0, model_loaded=0, masks_generated=0,
                           objects_saved=0, completed=0),
        retries=[], objects=[saved(i, m) for i, m in enumerate(masks)], skipped=[],
        coco_segmentation=form)
    path = tmp_path / f"annotations_{form}.json"
    path.write_text(json.dumps(coco_dataset(metadata)))
    return COCO(str(path))


def test_auto_writes_polygons_where_exact_and_rle_for_an_object_with_a_hole(tmp_path):
    speck = np.zeros((60, 80), bool)
    speck[5, 5] = True
    masks = [rectangle_mask(), speck, ring_mask()]
    coco = coco_of(masks, "auto", tmp_path)
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [type(a["segmentation"]) for a in annotations] == [list, list, dict]
    for annotation, mask in zip(annotations, masks, strict=True):
        np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), mask)
    assert [a["id"] for a in coco.dataset["annotations"]] == [1, 2, 3]
    assert coco.dataset["images"][0]["file_name"] == "photo.jpg"


def test_polygons_or_rle_for_every_object_when_asked(tmp_path):
    masks = [rectangle_mask(), ring_mask()]
    rle = coco_of(masks, "rle", tmp_path).dataset["annotations"]
    assert all(isinstance(a["segmentation"], dict) for a in rle)
    polygons = coco_of(masks, "polygons", tmp_path)
    ring = polygons.loadAnns([2])[0]
    assert isinstance(ring["segmentation"], list)  # the hole filled, as the tool asked
    np.testing.assert_array_equal(polygons.annToMask(ring).astype(bool), rectangle_mask())
