"""POST /segment: the service's one segmentation endpoint."""

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from app.core.errors import InvalidImage
from app.routes.deps import JobsDep, ManagerDep, RequireApiKey, SettingsDep
from app.schemas import ErrorResponse, GenerationParams, ResultFiles, ResultUrls, SegmentResponse
from app.services.pipeline import JobResult, segment_image

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
    data = await image.read(settings.max_image_bytes + 1)
    if len(data) > settings.max_image_bytes:
        raise InvalidImage("too_large", "The upload exceeds MAX_IMAGE_SIZE_MB",
                           max_bytes=settings.max_image_bytes)
    file_name = PurePosixPath((image.filename or "").replace("\\", "/")).name or "image.png"
    result = await segment_image(data, params, manager, settings, file_name, jobs,
                                 request.is_disconnected)
    return _response(result)


def _response(result: JobResult) -> SegmentResponse:
    # Paths are given relative to the results folder's parent (the working
    # directory with the default RESULTS_DIR), never as absolute server paths.
    output_dir = f"{result.output_dir.parent.name}/{result.output_dir.name}"
    objects = result.metadata["objects"]
    url_base = f"/results/{result.job_id}"
    return SegmentResponse(
        job_id=result.job_id,
        objects_count=len(objects),
        output_dir=output_dir,
        files=ResultFiles(**_file_paths(output_dir, objects)),
        urls=ResultUrls(**_file_paths(url_base, objects), archive=f"{url_base}/archive.zip"),
        parameters=result.metadata["parameters"],
        timings=result.timings,
    )


def _file_paths(base: str, objects: list[dict]) -> dict:
    return {
        "overlay": f"{base}/overlay.png",
        "masks": [f"{base}/{o['mask_file']}" for o in objects],
        "objects": [f"{base}/{o['object_file']}" for o in objects],
        "metadata": f"{base}/metadata.json",
        "annotations": f"{base}/annotations.json",
    }
