"""The generator parameters a request may set (form fields of POST /segment)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from app.schemas.prompts import Prompt
from app.services.results.layout import new_job_id


# How annotations.json writes each object's segmentation (app.services.results.exports).
CocoSegmentation = Literal["auto", "polygons", "rle"]
COCO_SEGMENTATION_HELP = ("annotations.json: auto = polygons where they hold the mask exactly, "
                          "else RLE (holes); polygons = every object as polygons (holes lost); "
                          "rle = every object as RLE")


class GenerationParams(BaseModel):
    """Optional form fields of POST /segment. Defaults are SamAutomaticMaskGenerator's.
    Titles, limits and defaults here are also the web page's labels, checks and placeholders.

    Unknown form fields are refused (422, see app.routes.segment), so a misspelt
    parameter is never silently ignored. `points_per_batch` is not a request field:
    prompts are decoded in batches of the server's DECODE_BATCH_SIZE, one compiled
    shape for every request."""

    points_per_side: int = Field(32, ge=1, le=128, title="Points per side", description="Grid of point prompts per side")
    pred_iou_thresh: float | None = Field(None, ge=0.0, le=1.0, title="Predicted IoU threshold", description=(
        "Keep masks the model scores above this (default: the model family's, "
        "0.88 for SAM 1, 0.8 for SAM 2.1)"))
    stability_score_thresh: float = Field(0.95, ge=0.0, le=1.0, title="Stability score threshold", description="Keep masks stable above this")
    stability_score_offset: float = Field(1.0, ge=0.0, le=10.0, title="Stability score offset", description="Logit shift for the stability score")
    box_nms_thresh: float = Field(0.7, ge=0.0, le=1.0, title="Box NMS threshold", description="Box IoU above which duplicates are dropped")
    crop_n_layers: int = Field(0, ge=0, le=3, title="Crop layers", description="Extra layers of image crops to run")
    crop_n_points_downscale_factor: int = Field(1, ge=1, le=8, title="Crop points downscale", description="Point grid shrink per crop layer")
    min_mask_region_area: int = Field(0, ge=0, le=10_000_000, title="Min mask region area", description="Remove islands/holes under this area")
    min_object_pixels: int | None = Field(None, ge=0, title="Min object pixels", description="Drop masks smaller than this (default: MIN_OBJECT_PIXELS)")
    # SAM 2.1 only (SAM2AutomaticMaskGenerator's); sent to a SAM 1 model they are a 422.
    mask_threshold: float | None = Field(None, ge=-32.0, le=32.0, title="Mask threshold", description="SAM 2.1: logit threshold of a mask (default 0.0)")
    multimask_output: bool | None = Field(None, title="Multimask output", description="SAM 2.1: three candidate masks per point (default true)")
    use_m2m: bool | None = Field(None, title="Mask-to-mask refinement", description="SAM 2.1: refine each mask with one more decode, its own mask as prompt (default false)")

    def grid_fields_sent(self) -> list[str]:
        """Fields the client set that tune only the automatic point grid and its filters:
        with `prompts` they would do nothing, so they are refused, not ignored."""
        return sorted(self.model_fields_set
                      - {"stability_score_offset", "min_object_pixels", "mask_threshold"})

    def generator_kwargs(self) -> dict[str, Any]:
        """The arguments of the mask generator (everything but the saving filter); unset
        ones are left out, so the family's generator applies its own defaults."""
        return self.model_dump(exclude={"min_object_pixels"}, exclude_none=True)

    def applied(self, default_min_object_pixels: int,
                family_defaults: dict[str, Any] | None = None) -> "AppliedParameters":
        """These parameters with the server's and the model family's defaults filled in,
        as recorded in metadata (parameters the family does not take are left out)."""
        min_pixels = default_min_object_pixels if self.min_object_pixels is None else self.min_object_pixels
        values = self.model_dump()
        for name, default in (family_defaults or {}).items():
            if values.get(name, 0) is None:
                values[name] = default
        return AppliedParameters(**{**values, "min_object_pixels": min_pixels})


# Filters that let a small model (sam_tiny) keep objects where the defaults keep none:
# the web page offers them when a job finds nothing (GET /info `relaxed_parameters`).
RELAXED_PARAMETERS = {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.8}


class AppliedParameters(GenerationParams):
    """The parameters a job actually ran with: those of the model's family, each with
    its value (the /segment answer and metadata.json never list SAM 2.1's parameters,
    as null, for a SAM 1 job)."""

    min_object_pixels: int

    @model_serializer(mode="wrap")
    def _taken_only(self, handler):  # unannotated: the published schema stays the fields
        return {name: value for name, value in handler(self).items() if value is not None}


class StagedImage(BaseModel):
    """Broker mode's claim check: where a queued job's image waits in the results storage
    (`key`, relative to RESULTS_DIR) and the sha256 a worker checks it against."""

    key: str
    sha256: str


class JobRequest(BaseModel):
    """Everything one segmentation job needs from its client: the typed record a route
    (or the CLI, or a queue) hands to the pipeline. It survives a JSON round trip
    (`model_dump_json` / `model_validate_json`; the image travels as base64, or, in
    broker mode's queue, stays behind in storage: `staged_image`, with `image` empty)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    job_id: str = Field(default_factory=new_job_id)
    image: bytes = Field(repr=False)
    file_name: str = "image.png"
    params: GenerationParams = Field(default_factory=GenerationParams)
    prompts: list[Prompt] | None = Field(None, description="Cut out these objects only (one per prompt)")
    coco_segmentation: CocoSegmentation = Field("auto", description=COCO_SEGMENTATION_HELP)
    staged_image: StagedImage | None = None
