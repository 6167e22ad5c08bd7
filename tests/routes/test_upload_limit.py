"""The image part's own size check (the body limit is tested over HTTP in reliability/)."""

import asyncio
from io import BytesIO

import pytest
from fastapi import UploadFile

from app.core.errors import InvalidImage
from app.routes.upload_limit import read_image_upload
from tests.images import image_bytes


def read(data: bytes, max_bytes: int) -> bytes:
    return asyncio.run(read_image_upload(UploadFile(BytesIO(data)), max_bytes))


def test_an_image_of_exactly_the_limit_is_read_whole():
    data = image_bytes("BMP", 160, 120)
    assert read(data, max_bytes=len(data)) == data


def test_one_byte_over_the_limit_is_too_large_with_the_limit_in_details():
    data = image_bytes("BMP", 160, 120)
    with pytest.raises(InvalidImage) as refused:
        read(data, max_bytes=len(data) - 1)
    assert refused.value.details == {"reason": "too_large", "max_bytes": len(data) - 1}
