"""Batches: many images, one command (`python -m app segment ...`) or one request
(`POST /batches`). The manifest line, the counters and the HTTP shapes."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.params import COCO_SEGMENTATION_HELP, CocoSegmentation, GenerationParams

ManifestStatus = Literal["succeeded", "failed", "skipped"]
BatchStatus = Literal["running", "finished", "cancelled", "failed"]


class ManifestLine(BaseModel):
    """One line of manifest.jsonl: what became of one input. The last line of an input
    is its state (a re-run appends; it never rewrites earlier lines)."""

    input: str = Field(description="The path or key relative to the argument (or prefix) it came from")
    status: ManifestStatus
    job_id: str | None = None
    output_dir: str | None = None
    objects_count: int | None = None
    error_code: str | None = None
    seconds: float | None = Field(None, description="The job's run time (0 when skipped)")


class BatchCounts(BaseModel):
    """Counters a batch keeps as its inputs move (never recounted from the jobs)."""

    total: int = 0
    queued: int = Field(0, description="Not started yet (waiting to be submitted, or queued)")
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = Field(0, description="Committed by an earlier run of the same manifest")
    cancelled: int = Field(0, description="Never started: the batch was cancelled")

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped + self.cancelled


class BatchParams(GenerationParams):
    """The generator parameters of a batch: as POST /segment's, a misspelt one refused."""

    model_config = ConfigDict(extra="forbid")


class BatchRequest(BaseModel):
    """POST /batches: the images under `input`, segmented with these parameters."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="s3://bucket/prefix/, or a folder under BATCH_INPUT_ROOT "
                                   "(relative to it, or absolute); searched recursively")
    params: BatchParams = Field(default_factory=BatchParams,
                                     description="Generator parameters, as POST /segment takes them")
    coco_segmentation: CocoSegmentation = Field("auto", description=COCO_SEGMENTATION_HELP)
    force: bool = Field(False, description="Redo inputs an earlier batch of the same input "
                                           "already committed (default: skip them)")


class BatchView(BaseModel):
    """POST /batches (202) and GET /batches/{batch_id}: where a batch stands."""

    batch_id: str
    status: BatchStatus
    input: str
    counts: BatchCounts
    manifest: str = Field(description="Where manifest.jsonl is (a path or an s3:// URL)")
    status_url: str
    error: str | None = Field(None, description="Why the batch stopped, when status is failed")
