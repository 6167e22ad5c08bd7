"""The async job API's shapes: the job record (stored by the job store, in a JSON file
or in Redis) and the answers of POST/GET/DELETE /jobs."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.api import ErrorResponse, SegmentResponse

# requeued: its worker stopped beating (WORKER_LOST_AFTER_S) and it waits for another.
JobStatus = Literal["queued", "running", "requeued", "succeeded", "failed", "cancelled"]
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class JobProgress(BaseModel):
    phase: str = Field(description="The pipeline phase: preprocessed, model_loaded, "
                                   "masks_generated, objects_saved, completed")
    batches_done: float | None = Field(
        None, ge=0, le=1, description="Share of point batches done, while masks are generated")


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus = "queued"
    status_url: str = Field(description="GET it for the job's state (also the Location header)")


class JobView(BaseModel):
    """GET /jobs/{job_id}: where a job stands; `result` is exactly the /segment answer."""

    job_id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = Field(None, description="host:pid of the process that ran it")
    attempt: int = Field(1, ge=1, description="Which run of the job this is: 2 and more "
                                              "after its worker was lost and it was requeued")
    progress: JobProgress | None = None
    result: SegmentResponse | None = None
    error: ErrorResponse | None = None


class JobRecord(JobView):
    """What the job store keeps: the view plus the HTTP status of a failure."""

    error_status: int | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def view(self) -> JobView:
        return JobView(**self.model_dump(exclude={"error_status"}))
