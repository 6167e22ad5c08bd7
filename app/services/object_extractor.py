"""Cut objects out of the image: one RGBA crop per mask, alpha = the mask."""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ExtractedObject:
    rgba: np.ndarray  # h x w x 4, uint8, cropped to the mask's box
    bbox: tuple[int, int, int, int]  # x, y, w, h in image pixels
    area: int


class ObjectExtractor:
    """Turns masks into cut-outs, ignoring masks smaller than `min_pixels`."""

    def __init__(self, min_pixels: int = 0) -> None:
        self.min_pixels = min_pixels

    def keeps(self, mask: np.ndarray) -> bool:
        return int(np.count_nonzero(mask)) >= max(self.min_pixels, 1)

    def extract(self, image: np.ndarray, mask: np.ndarray) -> ExtractedObject:
        """The RGBA crop of `image` (H x W x 3) to the box of `mask` (H x W bool)."""
        x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
        crop_mask = mask[y:y + h, x:x + w]
        rgba = np.empty((h, w, 4), dtype=np.uint8)
        # Pixels outside the mask are zeroed, not just transparent: nothing of
        # the background leaks to a consumer that ignores alpha.
        rgba[..., :3] = image[y:y + h, x:x + w] * crop_mask[..., None]
        rgba[..., 3] = crop_mask * np.uint8(255)
        return ExtractedObject(rgba=rgba, bbox=(x, y, w, h), area=int(crop_mask.sum()))
