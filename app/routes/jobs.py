"""The async job API: submit with POST /jobs (the /segment form), follow with
GET /jobs/{job_id}, cancel with DELETE /jobs/{job_id}. Jobs run in this process
(embedded) or on Celery workers (broker mode); the answers are the same."""

from fastapi import APIRouter, Response

from app.core.errors import NotFound
from app.routes.deps import JobsDep, RequireApiKey
from app.routes.segment import SegmentForm
from app.schemas import ErrorResponse
from app.schemas.jobs import JobAccepted, JobRecord, JobView
from app.services.results import layout

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[RequireApiKey])
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 422, 503)}


@router.post("", status_code=202, response_model=JobAccepted, responses=_ERRORS)
async def submit_job(job: SegmentForm, jobs: JobsDep, response: Response) -> JobAccepted:
    """Accept a segmentation job and answer at once; follow it at `status_url`."""
    record = await jobs.submit(job)
    status_url = f"/jobs/{record.job_id}"
    response.headers["Location"] = status_url
    return JobAccepted(job_id=record.job_id, status=record.status, status_url=status_url)


@router.get("/{job_id}", response_model=JobView, responses=_ERRORS)
def get_job(job_id: str, jobs: JobsDep) -> JobView:
    """Where the job stands; `result` is the /segment answer once it succeeded."""
    return _found(job_id, jobs.get(job_id) if layout.is_job_id(job_id) else None).view()


@router.delete("/{job_id}", response_model=JobView, responses=_ERRORS)
async def cancel_job(job_id: str, jobs: JobsDep) -> JobView:
    """Cancel the job: a queued job never runs, a running one is abandoned and leaves
    nothing in storage. A finished job is answered as it is."""
    return _found(job_id, await jobs.cancel(job_id) if layout.is_job_id(job_id) else None).view()


def _found(job_id: str, record: JobRecord | None) -> JobRecord:
    if record is None:
        raise NotFound("No job with this id", {"job_id": job_id})
    return record
