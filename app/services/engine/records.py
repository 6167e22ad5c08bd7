"""The record the engine hands to the rest of the service: one generated mask."""

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MaskRecord:
    """One mask, with the fields of a `SamAutomaticMaskGenerator.generate` record."""

    segmentation: np.ndarray  # H x W bool, the whole image
    area: int  # pixels in `segmentation`
    bbox: list[float]  # x, y, w, h
    predicted_iou: float
    stability_score: float
    point_coords: list[list[float]]  # the point prompt that produced it
    crop_box: list[int]  # x, y, w, h of the image crop it came from

    @classmethod
    def from_stock(cls, record: dict[str, Any]) -> "MaskRecord":
        """A binary-mask record of the stock generator, as a MaskRecord."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})
