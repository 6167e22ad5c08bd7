"""The record the engine hands to the rest of the service: one generated mask.

A mask travels as compressed COCO RLE, not as a dense H x W array: on a 24-megapixel
photo a dense mask is 24 MB and an RLE a few kilobytes, so a job's memory does not
grow with megapixels times masks. `mask()` decodes it where pixels are needed.

The one bbox convention of the service is COCO's, `[x, y, w, h]` with w and h the
mask's extent in pixels, as `pycocotools.mask.toBbox` gives it (stock SAM's records
are one pixel narrower): `MaskRecord.bbox` reads it off the RLE, and metadata.json,
annotations.json and the cut-outs all use it.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """An H x W boolean mask as pycocotools' compressed RLE (`counts` as bytes)."""
    return mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))


def encode_rle_region(region: np.ndarray, top: int, left: int,
                      size: tuple[int, int]) -> dict[str, Any]:
    """The same RLE for an H x W mask that is empty outside `region` (placed at row
    `top`, column `left`), without ever building the H x W array: RLE runs down
    columns, so only the region's columns (full height) are scanned."""
    height, width = size
    if region.size == 0 or not region.any():
        return mask_utils.frPyObjects({"counts": [height * width], "size": [height, width]},
                                      height, width)
    slab = np.zeros((height, region.shape[1]), np.uint8)
    slab[top: top + region.shape[0]] = region
    flat = slab.ravel(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)  # RLE counts start with a run of zeros
    counts[0] += height * left
    after = height * (width - left - region.shape[1])
    if not flat[-1]:
        counts[-1] += after
    elif after:
        counts.append(after)
    return mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)


@dataclass(frozen=True)
class MaskRecord:
    """One mask, with the fields of a `SamAutomaticMaskGenerator.generate` record."""

    rle: dict[str, Any]  # the whole-image mask, pycocotools compressed RLE
    area: int  # pixels in the mask
    predicted_iou: float
    stability_score: float
    point_coords: list[list[float]]  # the point prompt that produced it
    crop_box: list[int]  # x, y, w, h of the image crop it came from

    def mask(self) -> np.ndarray:
        """The mask as an H x W boolean array (row-major, as OpenCV and slicing want it)."""
        return np.ascontiguousarray(mask_utils.decode(self.rle), dtype=bool)

    @property
    def bbox(self) -> list[int]:
        """The mask's COCO box, x, y, w, h in pixels (all zero for an empty mask)."""
        return [int(v) for v in mask_utils.toBbox(self.rle)]

    @classmethod
    def from_stock(cls, record: dict[str, Any]) -> "MaskRecord":
        """A binary-mask record of the stock generator, as a MaskRecord."""
        fields = {name: record[name] for name in cls.__dataclass_fields__ if name != "rle"}
        # stock's own bbox is one pixel narrower than COCO's: read off the mask instead
        return cls(rle=encode_rle(record["segmentation"]), **fields)
