"""Request and response shapes: the contract `/docs` publishes."""

from typing import Any

from pydantic import BaseModel, Field


class GenerationParams(BaseModel):
    """Optional form fields of POST /segment. Defaults are SamAutomaticMaskGenerator's."""

    points_per_side: int = Field(32, ge=1, le=128, description="Grid of point prompts per side")
    points_per_batch: int = Field(64, ge=1, le=1024, description="Points run through the decoder at once")
    pred_iou_thresh: float = Field(0.88, ge=0.0, le=1.0, description="Keep masks the model scores above this")
    stability_score_thresh: float = Field(0.95, ge=0.0, le=1.0, description="Keep masks stable above this")
    stability_score_offset: float = Field(1.0, ge=0.0, le=10.0, description="Logit shift for the stability score")
    box_nms_thresh: float = Field(0.7, ge=0.0, le=1.0, description="Box IoU above which duplicates are dropped")
    crop_n_layers: int = Field(0, ge=0, le=3, description="Extra layers of image crops to run")
    crop_n_points_downscale_factor: int = Field(1, ge=1, le=8, description="Point grid shrink per crop layer")
    min_mask_region_area: int = Field(0, ge=0, le=10_000_000, description="Remove islands/holes under this area")
    min_object_pixels: int | None = Field(None, ge=0, description="Drop masks smaller than this (default: MIN_OBJECT_PIXELS)")

    def generator_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"min_object_pixels"})


class ResultFiles(BaseModel):
    overlay: str
    masks: list[str]
    objects: list[str]
    metadata: str
    annotations: str = Field(description="COCO-format annotations of every object")


class ResultUrls(ResultFiles):
    """The same files as URLs this server answers (GET), plus the whole folder as a zip."""

    archive: str


class SegmentResponse(BaseModel):
    success: bool = True
    job_id: str
    objects_count: int
    output_dir: str = Field(description="Result folder, relative to the server's working directory")
    files: ResultFiles
    urls: ResultUrls = Field(description="Download URLs (absolute paths on this server)")
    parameters: dict[str, Any]
    timings: dict[str, float] = Field(description="Milliseconds per phase")


class ErrorResponse(BaseModel):
    success: bool = False
    error_code: str = Field(examples=["INVALID_IMAGE"])
    message: str
    details: dict[str, Any] = {}


class InfoResponse(BaseModel):
    name: str
    version: str
    model: str
    device: str
    precision: str = Field(description="Mask generation numerics in use: exact or fast")
    precision_fallback_reason: str | None = Field(
        None, description="Why PRECISION=fast/auto runs exact on this machine")
    endpoints: list[str]


class HealthResponse(BaseModel):
    status: str
    model_loaded: bool


class LiveResponse(BaseModel):
    status: str = "ok"


class ReadyResponse(BaseModel):
    status: str = "ready"
    model_loaded: bool
    results_writable: bool
    jobs_running: int
    jobs_waiting: int
