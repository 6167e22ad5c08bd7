"""The one check of a request's `prompts` field against its upload, run by POST
/segment, POST /jobs and the CLI before any job is queued: a bad prompt is a 422
(InvalidRequest) and nothing is computed or written."""

from app.core.config import Settings
from app.core.errors import InvalidRequest
from app.schemas import GenerationParams
from app.schemas.prompts import Prompt, parse_prompts
from app.services.image_processor import oriented_size


def check_prompts(raw: str | None, image: bytes, settings: Settings,
                  params: GenerationParams | None = None) -> list[Prompt] | None:
    """The parsed prompts, bounds-checked against the image's size after EXIF
    orientation (read from its header only), or None when the field is absent.
    Point-grid parameters the client set alongside prompts are refused: they would
    do nothing there."""
    if raw is None or not raw.strip():
        return None
    prompts = parse_prompts(raw, oriented_size(image, settings.MAX_IMAGE_PIXELS),
                            settings.MAX_OBJECTS)
    if params is not None and (grid_only := params.grid_fields_sent()):
        raise InvalidRequest("The request is not valid", {"errors": [
            {"field": name, "message": "tunes the automatic point grid; it does not apply "
                                       "with prompts"} for name in grid_only]})
    return prompts
