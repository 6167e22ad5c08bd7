"""GET /metrics: Prometheus metrics (see app.services.metrics for what is counted)."""

from fastapi import APIRouter, Response

from app.routes.deps import JobsDep
from app.services.metrics import CONTENT_TYPE

router = APIRouter()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(jobs: JobsDep) -> Response:
    """Request counts and latencies, phase and job durations, queue depth (and workers
    seen in broker mode), model load time."""
    return Response(jobs.metrics(), media_type=CONTENT_TYPE)
