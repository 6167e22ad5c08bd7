"""Interchange formats for masks: COCO RLE, COCO polygons and a COCO annotations file.

Per object, metadata.json carries `rle` (compressed COCO RLE, `counts` as str) and
`polygons` (the outlines of its regions along pixel edges, COCO's polygon form).
Each job also gets `annotations.json`, one COCO dataset with one image, which
pycocotools, CVAT, Label Studio and FiftyOne import as is.

Polygons cannot have holes, so an object with a hole is not what its polygons say.
`annotations.json` therefore holds each object in the form the request chose
(`coco_segmentation`): `auto` (the default) writes polygons where pycocotools
rasterises them back to exactly the mask, else the RLE; `polygons` and `rle` write
every object in that one form, for a tool that reads only one.
"""

import json
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from app.schemas import CocoRle, JobMetadata, SavedObject

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}


def coco_rle(rle: dict[str, Any]) -> CocoRle:
    """pycocotools' compressed RLE as JSON-ready COCO RLE: `{"size": [H, W], "counts": str}`."""
    return CocoRle(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode("ascii"))


def mask_to_polygons(mask: np.ndarray) -> list[list[int]]:
    """The outline of every region of the mask, each `[x1, y1, x2, y2, ...]`.

    Vertices lie on pixel edges (a pixel at (x, y) spans x..x+1), the convention
    pycocotools rasterises, so a region without holes decodes to exactly its pixels.
    Holes are not represented (COCO polygons cannot express them)."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))  # a view: no full-size copy
    if not w:
        return []
    # Each pixel as a 2x2 block: the contour of the blocks' boundary pixels, mapped back
    # (2i -> i, 2i+1 -> i+1), runs along the original pixels' edges.
    crop = np.kron(mask[y:y + h, x:x + w].astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = (contour.reshape(-1, 2) + 1) // 2 + (x, y)
        keep = np.any(points != np.roll(points, 1, axis=0), axis=1)  # no repeated vertex
        polygons.append(points[keep].reshape(-1).tolist())
    return polygons


def polygons_are_exact(obj: SavedObject) -> bool:
    """Whether pycocotools turns the object's polygons back into exactly its mask."""
    if not obj.polygons:
        return False
    height, width = obj.rle.size
    drawn = mask_utils.merge(mask_utils.frPyObjects(obj.polygons, height, width))
    return drawn["counts"].decode("ascii") == obj.rle.counts  # compressed RLE is canonical


def _segmentation(obj: SavedObject, form: str) -> list[list[int]] | dict[str, Any]:
    if form == "polygons" or (form == "auto" and polygons_are_exact(obj)):
        return obj.polygons
    return obj.rle.model_dump()


def coco_dataset(metadata: JobMetadata) -> dict[str, Any]:
    """The job's metadata as a COCO dataset: one image, one annotation per object,
    each segmentation in the form `metadata.coco_segmentation` says."""
    image = metadata.image
    annotations = [
        {
            "id": number,
            "image_id": 1,
            "category_id": CATEGORY["id"],
            "segmentation": _segmentation(obj, metadata.coco_segmentation),
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
