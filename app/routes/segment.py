"""POST /segment: segment one image and answer when it is done. The form it reads
(`segment_form`) is shared with POST /jobs."""

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from app.core.errors import InvalidRequest
from app.routes.deps import JobsDep, RequireApiKey, SettingsDep
from app.routes.upload_limit import read_image_upload
from app.schemas import ErrorResponse, GenerationParams, JobRequest, SegmentResponse
from app.schemas.params import COCO_SEGMENTATION_HELP, CocoSegmentation
from app.schemas.prompts import MARKS_RULE
from app.services.intake import job_request

router = APIRouter()
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 422, 500, 502, 503, 504, 507)}


_FORM_FIELDS = {"image", "prompts", "marks", "coco_segmentation", *GenerationParams.model_fields}
_WHY_NOT = {"points_per_batch": "not a request parameter: prompts are decoded in batches "
                                "of the server's DECODE_BATCH_SIZE"}

PROMPTS_HELP = ('JSON list of prompts, one object each: [{"points": [[x, y]], "labels": [1], '
                '"box": [x0, y0, x1, y1]}] in image pixels after EXIF orientation; '
                'labels 1 = on the object, 0 = not on it (default all 1)')
MARKS_HELP = ('Instead of prompts, the marks a person made, ungrouped: {"points": [[x, y, label], '
              '...], "boxes": [[x0, y0, x1, y1], ...]} (label optional, default 1); the server '
              'groups them into prompts: ' + MARKS_RULE)


async def _only_known_fields(request: Request) -> None:
    """A misspelt, unsupported or repeated field is an error, never silently ignored."""
    names = [name for name, _ in (await request.form()).multi_items()]
    errors = [{"field": name, "message": _WHY_NOT.get(name, "unknown field")}
              for name in sorted(set(names) - _FORM_FIELDS)]
    errors += [{"field": name, "message": "sent more than once"}
               for name in sorted({n for n in names if names.count(n) > 1} & _FORM_FIELDS)]
    if errors:
        raise InvalidRequest("The request is not valid", {"errors": errors})


async def segment_form(
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP, BMP or TIFF")],
    params: Annotated[GenerationParams, Form()],
    settings: SettingsDep,
    _known: Annotated[None, Depends(_only_known_fields)],
    prompts: Annotated[str | None, Form(description=PROMPTS_HELP)] = None,
    marks: Annotated[str | None, Form(description=MARKS_HELP)] = None,
    coco_segmentation: Annotated[CocoSegmentation, Form(description=COCO_SEGMENTATION_HELP)] = "auto",
) -> JobRequest:
    """The job a segmentation form describes (POST /segment and POST /jobs alike):
    every object in the image, or with `prompts` (or `marks`) the objects pointed at."""
    data = await read_image_upload(image, settings.max_image_bytes)
    return job_request(data, client_file_name(image.filename), params, prompts, settings,
                       coco_segmentation, marks)


SegmentForm = Annotated[JobRequest, Depends(segment_form)]


@router.post("/segment", response_model=SegmentResponse, responses=_ERRORS,
             dependencies=[RequireApiKey])
async def segment(request: Request, job: SegmentForm, jobs: JobsDep) -> SegmentResponse:
    """Cut out every object in the image (or the ones `prompts` point at) and save them."""
    return await jobs.segment(job, request.is_disconnected)


def client_file_name(name: str | None) -> str:
    """The client's name for the upload without any folder part (for annotations.json)."""
    return PurePosixPath((name or "").replace("\\", "/")).name or "image.png"
