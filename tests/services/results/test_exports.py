"""COCO RLE, polygons and the COCO dataset built from a job's metadata."""

import json

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from app.services.results.exports import coco_dataset, mask_to_polygons, mask_to_rle


def rectangle_mask() -> np.ndarray:
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    return mask


def test_rle_decodes_back_to_the_same_mask():
    mask = rectangle_mask()
    mask[0, 0] = mask[59, 79] = True  # corners: run lengths at both ends
    rle = mask_to_rle(mask)
    assert rle["size"] == [60, 80] and isinstance(rle["counts"], str)
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    assert json.loads(json.dumps(rle)) == rle


def test_polygon_of_a_rectangle_is_its_four_corners():
    assert mask_to_polygons(rectangle_mask()) == [[20, 10, 20, 29, 49, 29, 49, 10]]


def test_each_separate_region_gets_its_own_polygon_and_specks_are_dropped():
    mask = rectangle_mask()
    mask[40:55, 5:15] = True
    mask[58, 78] = True  # a single pixel cannot form a polygon
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2 and all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)


def test_coco_dataset_loads_in_pycocotools_with_rle_fallback(tmp_path):
    big, speck = rectangle_mask(), np.zeros((60, 80), bool)
    speck[5, 5] = True
    objects = [
        {"index": i, "area": int(m.sum()), "bbox": [0, 0, 1, 1], "predicted_iou": 0.9,
         "rle": mask_to_rle(m), "polygons": mask_to_polygons(m)}
        for i, m in enumerate([big, speck])
    ]
    metadata = {"job_id": "j", "created_at": "2026-01-01T00:00:00+00:00", "model_type": "sam_tiny",
                "image": {"file_name": "photo.jpg", "width": 80, "height": 60}, "objects": objects}
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(coco_dataset(metadata)))
    coco = COCO(str(path))
    big_ann, speck_ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert isinstance(big_ann["segmentation"], list)  # polygons first
    assert isinstance(speck_ann["segmentation"], dict)  # no polygon: the exact RLE
    np.testing.assert_array_equal(coco.annToMask(speck_ann).astype(bool), speck)
    overlap = (coco.annToMask(big_ann).astype(bool) & big).sum() / big.sum()
    assert overlap > 0.9
    assert [a["id"] for a in coco.dataset["annotations"]] == [1, 2]
    assert coco.dataset["images"][0]["file_name"] == "photo.jpg"
