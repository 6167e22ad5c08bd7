"""POST /segment: the service's one segmentation endpoint."""

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from app.core.errors import InvalidRequest
from app.routes.deps import JobsDep, ManagerDep, RequireApiKey, SettingsDep
from app.routes.upload_limit import read_image_upload
from app.schemas import (ErrorResponse, GenerationParams, JobRequest, ResultFiles, ResultUrls,
                         SegmentResponse)
from app.services.pipeline import JobResult, segment_image
from app.services.prompt_check import check_prompts
from app.services.results import layout

router = APIRouter()
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 422, 500, 502, 503, 504, 507)}


_FORM_FIELDS = {"image", "prompts", *GenerationParams.model_fields}
_WHY_NOT = {"points_per_batch": "not a request parameter: prompts are decoded in batches "
                                "of the server's DECODE_BATCH_SIZE"}

PROMPTS_HELP = ('JSON list of prompts, one object each: [{"points": [[x, y]], "labels": [1], '
                '"box": [x0, y0, x1, y1]}] in image pixels after EXIF orientation; '
                'labels 1 = on the object, 0 = not on it (default all 1)')


async def _only_known_fields(request: Request) -> None:
    """A misspelt or unsupported field is an error, never silently ignored."""
    unknown = sorted(set((await request.form()).keys()) - _FORM_FIELDS)
    if unknown:
        raise InvalidRequest("The request is not valid", {"errors": [
            {"field": name, "message": _WHY_NOT.get(name, "unknown field")} for name in unknown]})


@router.post("/segment", response_model=SegmentResponse, responses=_ERRORS,
             dependencies=[RequireApiKey, Depends(_only_known_fields)])
async def segment(
    request: Request,
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP, BMP or TIFF")],
    params: Annotated[GenerationParams, Form()],
    manager: ManagerDep,
    settings: SettingsDep,
    jobs: JobsDep,
    prompts: Annotated[str | None, Form(description=PROMPTS_HELP)] = None,
) -> SegmentResponse:
    """Find every object in the image (or, with `prompts`, the objects pointed at),
    cut each one out, and save the results."""
    data = await read_image_upload(image, settings.max_image_bytes)
    job = JobRequest(image=data, file_name=client_file_name(image.filename), params=params,
                     prompts=check_prompts(prompts, data, settings))
    result = await segment_image(job, manager, settings, jobs, request.is_disconnected)
    return segment_response(result)


def client_file_name(name: str | None) -> str:
    """The client's name for the upload without any folder part (for annotations.json)."""
    return PurePosixPath((name or "").replace("\\", "/")).name or "image.png"


def segment_response(result: JobResult) -> SegmentResponse:
    """The answer for a finished job: where its files are, on disk and over HTTP."""
    # Paths are given relative to the results folder's parent (the working
    # directory with the default RESULTS_DIR), never as absolute server paths.
    output_dir = f"{result.output_dir.parent.name}/{result.output_dir.name}"
    metadata = result.metadata
    masks = [o.mask_file for o in metadata.objects]
    objects = [o.object_file for o in metadata.objects]
    url_base = f"/results/{result.job_id}"
    return SegmentResponse(
        job_id=result.job_id,
        objects_count=len(metadata.objects),
        output_dir=output_dir,
        files=ResultFiles(**layout.result_paths(output_dir, masks, objects)),
        urls=ResultUrls(**layout.result_paths(url_base, masks, objects),
                        archive=f"{url_base}/{layout.ARCHIVE}"),
        parameters=metadata.parameters,
        timings=metadata.timings_ms,
    )
