"""Cut objects out of the image: one RGBA crop per mask, alpha = the mask."""

import numpy as np


def cut_out(image: np.ndarray, mask: np.ndarray, bbox: list[int]) -> np.ndarray:
    """The RGBA crop (h x w x 4, uint8) of `image` (H x W x 3) to `bbox`, the COCO box
    (x, y, w, h) of `mask` (H x W bool): `MaskRecord.bbox`."""
    x, y, w, h = bbox
    crop_mask = mask[y:y + h, x:x + w]
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    # Pixels outside the mask are zeroed, not just transparent: nothing of
    # the background leaks to a consumer that ignores alpha.
    rgba[..., :3] = image[y:y + h, x:x + w] * crop_mask[..., None]
    rgba[..., 3] = crop_mask * np.uint8(255)
    return rgba
