"""GET /metrics: Prometheus metrics (see app.services.metrics for what is counted)."""

from fastapi import APIRouter, Request, Response

from app.services.metrics import CONTENT_TYPE, render_metrics

router = APIRouter()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(request: Request) -> Response:
    """Request counts and latencies, phase and job durations, queue depth (and workers
    seen in broker mode), model load time."""
    jobs, manager = request.app.state.jobs, request.app.state.manager
    jobs.refresh_gauges()
    load = (None if manager is None or manager.load_seconds is None
            else (manager.model_type, manager.device, manager.load_seconds))
    return Response(render_metrics(load), media_type=CONTENT_TYPE)
