"""The overlay picture: every kept mask in its own translucent colour, outlined."""

import colorsys
from collections.abc import Iterable

import cv2
import numpy as np

_FILL_OPACITY = 0.45


def mask_colour(index: int) -> tuple[int, int, int]:
    """Distinct, stable RGB colours: hues spaced by the golden ratio."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def render_overlay(image: np.ndarray, masks: Iterable[np.ndarray]) -> np.ndarray:
    """`image` (H x W x 3 RGB) with `masks` (largest first) painted over it.

    Smaller masks are painted after larger ones so they stay visible on top. The masks
    are read once, one at a time, so they can be decoded as they are needed."""
    paint = image.copy()
    covered = np.zeros(image.shape[:2], dtype=bool)
    outlines = []
    for index, mask in enumerate(masks):
        paint[mask] = mask_colour(index)
        covered |= mask
        contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        outlines.append(contours)
    # Blended in uint8, in place: a float copy of the covered pixels would cost
    # 24 bytes a pixel (about 1.7 GB at 24 MP) for the same picture.
    cv2.addWeighted(image, 1 - _FILL_OPACITY, paint, _FILL_OPACITY, 0, dst=paint)
    blended = image.copy()
    np.copyto(blended, paint, where=covered[..., None])
    del paint, covered
    for index, contours in enumerate(outlines):
        cv2.drawContours(blended, contours, -1, mask_colour(index), thickness=2)
    return blended
