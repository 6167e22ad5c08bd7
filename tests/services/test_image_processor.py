"""decode_image: decode by content, convert every mode to RGB, refuse bad input clearly."""

import numpy as np
import pytest
from PIL import Image

from app.core.errors import InvalidImage
from app.services.image_processor import decode_image
from tests.images import encode, image_bytes, scene_rgb

MB = 1024 * 1024


def decode(data: bytes, max_pixels: int = 10_000_000):
    return decode_image(data, max_pixels)


def reason_for(data: bytes, **limits) -> str:
    with pytest.raises(InvalidImage) as failure:
        decode(data, **limits)
    assert failure.value.code == "INVALID_IMAGE" and failure.value.status == 400
    return failure.value.details["reason"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_accepted_formats_decode_to_rgb(fmt):
    image = decode(image_bytes(fmt))
    assert image.format == fmt and image.rgb.shape == (120, 160, 3) and image.rgb.dtype == np.uint8


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_other_modes_are_converted_to_rgb(mode):
    source = Image.fromarray(scene_rgb())
    if mode == "I;16":
        converted = Image.fromarray((np.asarray(source.convert("L"), np.uint16) * 257))
        fmt = "PNG"
    else:
        converted, fmt = source.convert(mode), ("TIFF" if mode == "CMYK" else "PNG")
    image = decode(encode(np.asarray(converted), fmt) if mode != "I;16" else _save(converted, fmt))
    assert image.rgb.shape == (120, 160, 3)


def _save(image: Image.Image, fmt: str) -> bytes:
    from io import BytesIO
    buffer = BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_sixteen_bit_grey_keeps_its_brightness():
    grey = Image.fromarray(np.full((10, 10), 40000, np.uint16))
    assert decode(_save(grey, "PNG")).rgb[0, 0].tolist() == [156, 156, 156]


def test_transparent_pixels_become_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    assert decode(encode(rgba, "PNG")).rgb[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    upright = Image.fromarray(scene_rgb(160, 120))
    exif = upright.getexif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    data = _save_with(upright, exif)
    assert decode(data).rgb.shape == (160, 120, 3)


def _save_with(image: Image.Image, exif) -> bytes:
    from io import BytesIO
    buffer = BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_empty_upload_is_refused():
    assert reason_for(b"") == "empty"


def test_text_is_not_an_image():
    assert reason_for(b"hello, this is text and not a picture") == "not_an_image"


def test_truncated_png_is_refused():
    data = image_bytes("PNG", 400, 300)
    assert reason_for(data[: len(data) // 2]) == "truncated"


def test_gif_is_an_unsupported_format():
    assert reason_for(encode(scene_rgb(), "GIF")) == "unsupported_format"


def test_decompression_bomb_is_refused_from_its_header():
    bomb = Image.new("1", (20_000, 20_000))  # 400 M pixels, a few KB as PNG
    data = _save(bomb, "PNG")
    assert len(data) < 200_000
    with pytest.raises(InvalidImage) as failure:
        decode(data, max_pixels=10_000_000)
    assert failure.value.details == {"reason": "too_many_pixels", "width": 20_000,
                                     "height": 20_000, "max_pixels": 10_000_000}


def test_oriented_size_reads_exif_rotation_from_the_header():
    from io import BytesIO

    import numpy as np
    from PIL import Image

    from app.services.image_processor import oriented_size

    buffer = BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 200 x 60, shown rotated a quarter turn
    Image.fromarray(np.zeros((60, 200, 3), np.uint8)).save(buffer, "JPEG", exif=exif)
    assert oriented_size(buffer.getvalue(), 10**6) == (60, 200)
