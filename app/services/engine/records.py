"""The record the engine hands to the rest of the service: one generated mask.

A mask travels as compressed COCO RLE, not as a dense H x W array: on a 24-megapixel
photo a dense mask is 24 MB and an RLE a few kilobytes, so a job's memory does not
grow with megapixels times masks. `mask()` decodes it where pixels are needed.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """An H x W boolean mask as pycocotools' compressed RLE (`counts` as bytes)."""
    return mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))


@dataclass(frozen=True)
class MaskRecord:
    """One mask, with the fields of a `SamAutomaticMaskGenerator.generate` record."""

    rle: dict[str, Any]  # the whole-image mask, pycocotools compressed RLE
    area: int  # pixels in the mask
    bbox: list[float]  # x, y, w, h
    predicted_iou: float
    stability_score: float
    point_coords: list[list[float]]  # the point prompt that produced it
    crop_box: list[int]  # x, y, w, h of the image crop it came from

    def mask(self) -> np.ndarray:
        """The mask as an H x W boolean array."""
        return mask_utils.decode(self.rle).astype(bool)

    @classmethod
    def from_stock(cls, record: dict[str, Any]) -> "MaskRecord":
        """A binary-mask record of the stock generator, as a MaskRecord."""
        fields = {name: record[name] for name in cls.__dataclass_fields__ if name != "rle"}
        return cls(rle=encode_rle(record["segmentation"]), **fields)
