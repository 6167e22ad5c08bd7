"""Image I/O at the edges: validate and decode uploads, encode PNGs.

Validation looks at the bytes, never at the file name or declared type. The
pixel count is read from the header before any pixel is decoded, so a
decompression bomb is refused without costing memory.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.errors import InvalidImage

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
# Our own header check (MAX_IMAGE_PIXELS, configurable) replaces PIL's fixed one,
# so a bomb is reported with its size and the configured limit.
Image.MAX_IMAGE_PIXELS = None
# Low zlib effort: masks and cut-outs compress well anyway, and writing must
# stay a small fraction of the generation time.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]


@dataclass(frozen=True)
class DecodedImage:
    """An upload decoded to RGB, with what metadata.json reports about it."""

    rgb: np.ndarray  # H x W x 3, uint8
    format: str
    mode: str  # the PIL mode before conversion, e.g. "I;16", "CMYK", "P"

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode an upload to RGB or raise InvalidImage with `details.reason`. (Its size in
    bytes is bounded where it is received: app.routes.upload_limit.)"""
    with _readable(data):
        image = _open_checked(data, max_pixels)
        image.load()
        mode = image.mode
        rgb = _to_rgb(ImageOps.exif_transpose(image))
    return DecodedImage(rgb=rgb, format=image.format, mode=mode)


@contextmanager
def _readable(data: bytes) -> Iterator[None]:
    """Turn whatever PIL raises on bad bytes into InvalidImage with its reason."""
    if not data:
        raise InvalidImage("empty", "The uploaded file is empty")
    try:
        yield
    except InvalidImage:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidImage("not_an_image", "The upload is not a readable image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage("truncated", f"The image data is truncated or corrupt: {exc}") from exc


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    image = Image.open(BytesIO(data))
    _check_header(image, max_pixels)
    return image


def oriented_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only (no pixels
    decoded): what prompt coordinates are checked against before a job runs."""
    with _readable(data):
        image = _open_checked(data, max_pixels)
        orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _check_header(image: Image.Image, max_pixels: int) -> None:
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidImage("unsupported_format", f"{image.format} images are not accepted",
                           format=image.format, accepted=list(ACCEPTED_FORMATS))
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage("empty", "The image has no pixels")
    if width * height > max_pixels:
        raise InvalidImage("too_many_pixels", f"{width}x{height} exceeds {max_pixels} pixels",
                           width=width, height=height, max_pixels=max_pixels)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any mode to 8-bit RGB: 16/32-bit scaled down, transparency over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.uint32 if image.mode == "I" else np.uint16)
        shift = 24 if image.mode == "I" else 8
        image = Image.fromarray((wide >> shift).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def encode_png(pixels: np.ndarray) -> bytes:
    """A gray, RGB or RGBA uint8 array as PNG bytes (colour order RGB)."""
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, code)
    ok, encoded = cv2.imencode(".png", pixels, _PNG_PARAMS)
    if not ok:
        raise OSError("PNG encoding failed")
    return encoded.tobytes()


def encode_mask(mask: np.ndarray) -> bytes:
    """A boolean mask as an 8-bit PNG, 0 outside and 255 inside."""
    return encode_png(mask.astype(np.uint8) * 255)
