"""Test inputs made on the fly, so the suite needs no files from elsewhere."""

from io import BytesIO

import numpy as np
from PIL import Image


def scene_rgb(width: int = 160, height: int = 120) -> np.ndarray:
    """A plain background with two solid rectangles: cheap to segment."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = (30, 60, 90)
    pixels[height // 6: height // 2, width // 8: width // 2] = (240, 30, 30)
    pixels[height // 2: height - 10, width // 2: width - 12] = (30, 220, 60)
    return pixels


def encode(pixels: np.ndarray, fmt: str = "PNG", **save_options) -> bytes:
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **save_options)
    return buffer.getvalue()


def image_bytes(fmt: str = "PNG", width: int = 160, height: int = 120) -> bytes:
    return encode(scene_rgb(width, height), fmt)
