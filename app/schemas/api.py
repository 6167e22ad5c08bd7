"""HTTP answers: the contract `/docs` publishes."""

from typing import Any

from pydantic import BaseModel, Field

from app.core.config import Settings
from app.schemas.metadata import Timings
from app.schemas.params import RELAXED_PARAMETERS, AppliedParameters
from app.schemas.prompts import MARKS_RULE
from app.services.image_processor import ACCEPTED_FORMATS


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
    output_dir: str = Field(description="Where the result folder is: `<RESULTS_DIR name>/<folder>` "
                            "for a local folder, `s3://bucket/prefix/<folder>` for a bucket")
    files: ResultFiles
    urls: ResultUrls = Field(description="Download URLs (absolute paths on this server)")
    parameters: AppliedParameters
    timings: Timings = Field(description="Milliseconds per phase, as in metadata.json")


class ErrorResponse(BaseModel):
    success: bool = False
    error_code: str = Field(examples=["INVALID_IMAGE"])
    message: str
    details: dict[str, Any] = {}


class Limits(BaseModel):
    """What this server accepts, so that a client (the web page) can say so before it sends."""

    max_image_bytes: int = Field(description="MAX_IMAGE_SIZE_MB in bytes")
    max_image_pixels: int = Field(description="MAX_IMAGE_PIXELS, width x height")
    image_formats: list[str] = Field(description="Image formats accepted (told by content)")
    min_object_pixels: int = Field(description="min_object_pixels when a request leaves it out")
    max_objects: int = Field(description="Objects saved per job at most")

    @classmethod
    def of(cls, settings: Settings) -> "Limits":
        return cls(max_image_bytes=settings.max_image_bytes, max_image_pixels=settings.MAX_IMAGE_PIXELS,
                   image_formats=list(ACCEPTED_FORMATS), min_object_pixels=settings.MIN_OBJECT_PIXELS,
                   max_objects=settings.MAX_OBJECTS)


class InfoResponse(BaseModel):
    name: str
    version: str
    model: str
    device: str
    family: str = Field("sam1", description="The model's family: sam1 or sam2.1")
    models: list[str] = Field(default_factory=list, description="Every model a server can be started with (DEFAULT_MODEL)")
    parameters: dict[str, bool | int | float] = Field(default_factory=dict, description=(
        "The generation parameters (GenerationParams fields) the model's family takes, "
        "each with the default it runs with; any other is a 422"))
    precision: str = Field(description="Mask generation numerics in use: exact or fast")
    precision_fallback_reason: str | None = Field(
        None, description="Why PRECISION=fast/auto runs exact on this machine")
    precision_reason: str | None = Field(None, description=(
        "The PRECISION setting and the rule that chose `precision` here (broker mode: "
        "null, the workers decide)"))
    endpoints: list[str]
    limits: Limits
    relaxed_parameters: dict[str, float] = Field(
        default_factory=lambda: dict(RELAXED_PARAMETERS),
        description="Filters to try when the defaults keep no object (small models)")
    marks_rule: str = Field(MARKS_RULE, description="How the `marks` field's points and "
                            "boxes are grouped into prompts (one object each)")


class HealthResponse(BaseModel):
    status: str
    model_loaded: bool = Field(description="Always false in broker mode: the workers hold the model")
    mode: str = Field("embedded", description="embedded, or broker (BROKER_URL set)")


class LiveResponse(BaseModel):
    status: str = "ok"


class ReadyResponse(BaseModel):
    status: str = "ready"
    mode: str = "embedded"
    results_writable: bool
    model_loaded: bool | None = Field(None, description="Embedded mode")
    jobs_running: int | None = Field(None, description="Embedded mode")
    jobs_waiting: int | None = Field(None, description="Embedded mode")
    broker_reachable: bool | None = Field(None, description="Broker mode")
    queue_depth: int | None = Field(None, description="Broker mode: jobs waiting in Redis")
    workers: int | None = Field(None, description="Broker mode: workers seen in the last 30 s")
