"""COCO RLE, polygons and the COCO dataset built from a job's metadata."""

import json

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from app.schemas import GenerationParams, ImageInfo, JobMetadata, SavedObject, Timings
from app.services.engine.records import encode_rle
from app.services.results.exports import coco_dataset, coco_rle, mask_to_polygons


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
        SavedObject(index=i, area=int(m.sum()), bbox=[0, 0, 1, 1], predicted_iou=0.9,
                    stability_score=0.9, point_coords=[[0.0, 0.0]], crop_box=[0, 0, 80, 60],
                    rle=coco_rle(encode_rle(m)), polygons=mask_to_polygons(m),
                    mask_file=f"mask_{i}.png", object_file=f"object_{i}.png")
        for i, m in enumerate([big, speck])
    ]
    metadata = JobMetadata(
        job_id="j", created_at="2026-01-01T00:00:00+00:00", model_type="sam_tiny", device="cpu",
        image=ImageInfo(file_name="photo.jpg", width=80, height=60, format="JPEG", mode="RGB"),
        precision="exact", precision_fallback_reason=None, parameters=GenerationParams().applied(0),
        timings_ms=Timings(received=0, preprocessed=0, model_loaded=0, masks_generated=0,
                           objects_saved=0, completed=0),
        retries=[], objects=objects, skipped=[])
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
