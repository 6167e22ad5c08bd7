"""metadata.json: one job's record, written last into its result folder.

The same models make up the `/segment` answer, so `/docs` shows the real shapes.
"""

from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.params import COCO_SEGMENTATION_HELP, AppliedParameters, CocoSegmentation
from app.schemas.prompts import Prompt


class ImageInfo(BaseModel):
    file_name: str = Field(description="The client's name for the upload")
    width: int
    height: int
    format: str = Field(description="Detected from the bytes: PNG, JPEG, WEBP, BMP or TIFF")
    mode: str = Field(description="Pixel mode before conversion to RGB, e.g. RGB, P, I;16, CMYK")


class Timings(BaseModel):
    """Milliseconds per pipeline phase; `completed` is the whole job."""

    received: float
    preprocessed: float
    model_loaded: float
    masks_generated: float
    objects_saved: float
    completed: float


class CocoRle(BaseModel):
    size: list[int] = Field(description="[height, width]")
    counts: str = Field(description="Compressed COCO RLE (pycocotools reads it after .encode())")


class SavedObject(BaseModel):
    """One kept mask and its cut-out."""

    index: int
    bbox: list[int] = Field(description="[x, y, w, h] in image pixels")
    area: int = Field(description="Pixels in the mask")
    predicted_iou: float
    stability_score: float
    point_coords: list[list[float]] = Field(description="The point prompt that produced the mask")
    crop_box: list[int] = Field(description="[x, y, w, h] of the image crop it came from")
    rle: CocoRle
    polygons: list[list[int]] = Field(description="Outlines along pixel edges, COCO polygon form (no holes)")
    mask_file: str
    object_file: str
    prompt: Prompt | None = Field(None, description="The prompt that asked for it (prompted jobs)")
    prompt_index: int | None = Field(None, description="Its prompt's index in the request")


SkipReason = Literal["smaller_than_min_object_pixels", "empty_mask", "max_objects", "file_missing_or_empty"]


class SkippedMask(BaseModel):
    """A generated mask that was not saved, and why."""

    area: int
    reason: SkipReason
    index: int | None = Field(None, description="Its index, when it was being written")
    truncated_to: int | None = Field(None, description="MAX_OBJECTS, for reason max_objects")
    prompt_index: int | None = Field(None, description="The prompt it answered (prompted jobs)")


class Retry(BaseModel):
    attempt: int
    reason: Literal["cuda_out_of_memory", "predictor_error"]
    error: str


class JobMetadata(BaseModel):
    job_id: str
    created_at: str = Field(description="ISO 8601, UTC")
    image: ImageInfo
    model_type: str
    device: str
    precision: str
    precision_fallback_reason: str | None
    parameters: AppliedParameters
    timings_ms: Timings
    retries: list[Retry]
    objects: list[SavedObject]
    skipped: list[SkippedMask]
    worker: str | None = Field(None, description="host:pid of the process that ran the job")
    coco_segmentation: CocoSegmentation = Field("auto", description=COCO_SEGMENTATION_HELP)
