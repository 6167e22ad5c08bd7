"""POST /segment: the service's one segmentation endpoint."""

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.core.errors import InvalidImage
from app.routes.deps import ManagerDep, SettingsDep
from app.schemas import ErrorResponse, GenerationParams, ResultFiles, SegmentResponse
from app.services.pipeline import JobResult, segment_image

router = APIRouter()
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 422, 500, 502, 507)}


@router.post("/segment", response_model=SegmentResponse, responses=_ERRORS)
async def segment(
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP, BMP or TIFF")],
    params: Annotated[GenerationParams, Form()],
    manager: ManagerDep,
    settings: SettingsDep,
) -> SegmentResponse:
    """Find every object in the image, cut each one out, and save the results."""
    data = await image.read(settings.max_image_bytes + 1)
    if len(data) > settings.max_image_bytes:
        raise InvalidImage("too_large", "The upload exceeds MAX_IMAGE_SIZE_MB",
                           max_bytes=settings.max_image_bytes)
    result = await segment_image(data, params, manager, settings)
    return _response(result)


def _response(result: JobResult) -> SegmentResponse:
    # Paths are given relative to the results folder's parent (the working
    # directory with the default RESULTS_DIR), never as absolute server paths.
    output_dir = f"{result.output_dir.parent.name}/{result.output_dir.name}"
    objects = result.metadata["objects"]
    return SegmentResponse(
        job_id=result.job_id,
        objects_count=len(objects),
        output_dir=output_dir,
        files=ResultFiles(
            overlay=f"{output_dir}/overlay.png",
            masks=[f"{output_dir}/{o['mask_file']}" for o in objects],
            objects=[f"{output_dir}/{o['object_file']}" for o in objects],
            metadata=f"{output_dir}/metadata.json",
        ),
        parameters=result.metadata["parameters"],
        timings=result.timings,
    )
