"""The one way a job is taken in, used by POST /segment, POST /jobs and the CLI alike:
the upload checked by its header, the `prompts` field checked against it, and the
`JobRequest` built, all before any job is queued. A bad upload is a 400 and a bad
prompt a 422, and nothing is computed or written."""

from app.core.config import Settings
from app.core.errors import InvalidRequest
from app.schemas import GenerationParams, JobRequest
from app.schemas.params import CocoSegmentation
from app.schemas.prompts import MARKS_FIELD, Prompt, parse_prompts, prompts_from_marks
from app.services.image_processor import oriented_size
from app.services.model.families import check_parameters


def job_request(image: bytes, file_name: str, params: GenerationParams, prompts: str | None,
                settings: Settings, coco_segmentation: CocoSegmentation = "auto",
                marks: str | None = None) -> JobRequest:
    """The job for this upload. Refused here: not an image, an unaccepted format, too
    many pixels (read from the header; data truncated further on fails the job
    itself), parameters the model's family does not take, and prompts (or marks)
    that do not fit the image."""
    check_parameters(settings.DEFAULT_MODEL, params.model_fields_set)
    if marks is not None and marks.strip():
        if prompts is not None and prompts.strip():
            raise InvalidRequest("The request is not valid", {"errors": [
                {"field": MARKS_FIELD, "message": "send prompts or marks, not both"}]})
        prompts = prompts_from_marks(marks)
    size = oriented_size(image, settings.MAX_IMAGE_PIXELS)
    return JobRequest(image=image, file_name=file_name, params=params,
                      prompts=_checked_prompts(prompts, size, settings, params),
                      coco_segmentation=coco_segmentation)


def _checked_prompts(raw: str | None, size: tuple[int, int], settings: Settings,
                     params: GenerationParams) -> list[Prompt] | None:
    """The parsed prompts, bounds-checked against the image's size after EXIF
    orientation, or None when the field is absent. Point-grid parameters the client
    set alongside prompts are refused: they would do nothing there."""
    if raw is None or not raw.strip():
        return None
    prompts = parse_prompts(raw, size, settings.MAX_OBJECTS)
    if grid_only := params.grid_fields_sent():
        raise InvalidRequest("The request is not valid", {"errors": [
            {"field": name, "message": "tunes the automatic point grid; it does not apply "
                                       "with prompts"} for name in grid_only]})
    return prompts
