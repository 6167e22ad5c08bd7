"""POST /segment: the service's one segmentation endpoint."""

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from app.routes.deps import JobsDep, ManagerDep, RequireApiKey, SettingsDep
from app.routes.upload_limit import read_image_upload
from app.schemas import ErrorResponse, GenerationParams, ResultFiles, ResultUrls, SegmentResponse
from app.services.pipeline import JobResult, segment_image
from app.services.results import layout

router = APIRouter()
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 422, 500, 502, 503, 504, 507)}


@router.post("/segment", response_model=SegmentResponse, responses=_ERRORS,
             dependencies=[RequireApiKey])
async def segment(
    request: Request,
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP, BMP or TIFF")],
    params: Annotated[GenerationParams, Form()],
    manager: ManagerDep,
    settings: SettingsDep,
    jobs: JobsDep,
) -> SegmentResponse:
    """Find every object in the image, cut each one out, and save the results."""
    data = await read_image_upload(image, settings.max_image_bytes)
    file_name = PurePosixPath((image.filename or "").replace("\\", "/")).name or "image.png"
    result = await segment_image(data, params, manager, settings, file_name, jobs,
                                 request.is_disconnected)
    return segment_response(result)


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
