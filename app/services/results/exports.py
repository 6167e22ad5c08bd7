"""Interchange formats for masks: COCO RLE, COCO polygons and a COCO annotations file.

Per object, metadata.json carries `rle` (compressed COCO RLE, `counts` as str) and
`polygons` (outer contours as `[[x1, y1, x2, y2, ...], ...]`, COCO's polygon form).
Each job also gets `annotations.json`, one COCO dataset with one image, which
pycocotools, CVAT, Label Studio and FiftyOne import as is.
"""

import json
from typing import Any

import cv2
import numpy as np

from app.schemas import CocoRle, JobMetadata

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}
_MIN_POLYGON_POINTS = 3


def coco_rle(rle: dict[str, Any]) -> CocoRle:
    """pycocotools' compressed RLE as JSON-ready COCO RLE: `{"size": [H, W], "counts": str}`."""
    return CocoRle(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode("ascii"))


def mask_to_polygons(mask: np.ndarray) -> list[list[int]]:
    """Outer contours of every region of the mask, each `[x1, y1, x2, y2, ...]`.

    Holes are not represented (COCO polygons cannot express them); regions too
    small to form a polygon are dropped. The RLE is the exact shape."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).tolist() for c in contours if len(c) >= _MIN_POLYGON_POINTS]


def coco_dataset(metadata: JobMetadata) -> dict[str, Any]:
    """The job's metadata as a COCO dataset: one image, one annotation per object.

    Segmentation is given as polygons, the form every labelling tool reads; an
    object too small for a polygon falls back to its RLE."""
    image = metadata.image
    annotations = [
        {
            "id": number,
            "image_id": 1,
            "category_id": CATEGORY["id"],
            "segmentation": obj.polygons or obj.rle.model_dump(),
            "area": obj.area,
            "bbox": obj.bbox,
            "iscrowd": 0,
            "score": obj.predicted_iou,
        }
        for number, obj in enumerate(metadata.objects, start=1)
    ]
    return {
        "info": {"description": f"Segment Anything ({metadata.model_type}) job {metadata.job_id}",
                 "date_created": metadata.created_at},
        "licenses": [],
        "images": [{"id": 1, "file_name": image.file_name, "width": image.width,
                    "height": image.height}],
        "annotations": annotations,
        "categories": [CATEGORY],
    }


def coco_json(metadata: JobMetadata) -> bytes:
    """annotations.json's content."""
    return json.dumps(coco_dataset(metadata)).encode()
