"""The one check of a request's `prompts` field against its upload, run by POST
/segment, POST /jobs and the CLI before any job is queued: a bad prompt is a 422
(InvalidRequest) and nothing is computed or written."""

from app.core.config import Settings
from app.schemas.prompts import Prompt, parse_prompts
from app.services.image_processor import oriented_size


def check_prompts(raw: str | None, image: bytes, settings: Settings) -> list[Prompt] | None:
    """The parsed prompts, bounds-checked against the image's size after EXIF
    orientation (read from its header only), or None when the field is absent."""
    if raw is None or not raw.strip():
        return None
    size = oriented_size(image, settings.MAX_IMAGE_PIXELS)
    return parse_prompts(raw, size, settings.MAX_OBJECTS)
