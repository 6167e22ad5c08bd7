"""Cut objects out of the image: one RGBA crop per mask, alpha = the mask."""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Cutout:
    rgba: np.ndarray  # h x w x 4, uint8, cropped to the mask's box
    bbox: tuple[int, int, int, int]  # x, y, w, h in image pixels


def cut_out(image: np.ndarray, mask: np.ndarray) -> Cutout:
    """The RGBA crop of `image` (H x W x 3) to the box of `mask` (H x W bool)."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    crop_mask = mask[y:y + h, x:x + w]
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    # Pixels outside the mask are zeroed, not just transparent: nothing of
    # the background leaks to a consumer that ignores alpha.
    rgba[..., :3] = image[y:y + h, x:x + w] * crop_mask[..., None]
    rgba[..., 3] = crop_mask * np.uint8(255)
    return Cutout(rgba=rgba, bbox=(x, y, w, h))
