"""`SAM2Transforms.postprocess_masks`'s hole and speck filling, on every device.

Meta fills background components of the low-res logits up to `max_hole_area` pixels
and clears foreground specks of up to `max_sprinkle_area` (8-connectivity, image
border included) with a CUDA-only kernel, and silently skips both elsewhere. Here
OpenCV's connected components do the same on the CPU, so `min_mask_region_area`
acts wherever the service runs.
"""

import cv2
import numpy as np
import torch
from torch import Tensor


def _small_components(binary: np.ndarray, max_area: int) -> np.ndarray:
    """Pixels of `binary` (H, W bool) in 8-connected components of <= max_area pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8),
                                                               connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False  # label 0 is the other class
    return small[labels]


def fill_holes_and_specks(low_res: Tensor, threshold: float, max_area: int) -> Tensor:
    """(n, h, w) logits with small holes set to threshold + 10 and small specks to
    threshold - 10, as Meta's predictor does with max_hole_area = max_sprinkle_area."""
    if max_area <= 0 or low_res.numel() == 0:
        return low_res
    out = low_res.clone()
    for i, logits in enumerate(low_res.cpu().numpy()):
        holes = _small_components(logits <= threshold, max_area)
        filled = np.where(holes, threshold + 10.0, logits)
        # Meta finds the specks on the logits before filling, then clears them.
        specks = _small_components(logits > threshold, max_area)
        out[i] = torch.as_tensor(np.where(specks, threshold - 10.0, filled), device=out.device)
    return out
