"""GET /metrics: Prometheus metrics (see app.services.metrics for what is counted)."""

from fastapi import APIRouter, Request, Response

from app.services.metrics import CONTENT_TYPE, render_metrics

router = APIRouter()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(request: Request) -> Response:
    """Request counts and latencies, phase durations, queue depth, model load time."""
    state = request.app.state
    body = render_metrics(getattr(state, "manager", None), getattr(state, "jobs", None))
    return Response(body, media_type=CONTENT_TYPE)
