"""Health probes (always open, never need the API key).

- GET /health: `{"status": "ok", "model_loaded": ..., "mode": ...}`, for people and simple checks.
- GET /health/live: the process answers (its event loop runs).
- GET /health/ready: embedded mode: the model is loaded and the results folder is
  writable; broker mode: Redis answers and the results storage is writable (workers
  have their own probe, see app.cli.worker). 503 NOT_READY (with `details` saying
  which) otherwise. A bucket that hangs reads not writable within 2 s (the probe
  gets one short attempt, app.services.results.storage.s3).
"""

from fastapi import APIRouter

from app.core.errors import NotReady
from app.routes.deps import JobsDep
from app.schemas import ErrorResponse, HealthResponse, LiveResponse, ReadyResponse

router = APIRouter()


@router.get("/health", response_model=HealthResponse)
async def health(jobs: JobsDep) -> HealthResponse:
    model = jobs.model_state()
    return HealthResponse(status="ok", model_loaded=model.loaded, mode=model.mode)


@router.get("/health/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    return LiveResponse()


@router.get("/health/ready", response_model=ReadyResponse, response_model_exclude_none=True,
            responses={503: {"model": ErrorResponse}})
async def ready(jobs: JobsDep) -> ReadyResponse:
    ok, state = await jobs.readiness()
    if not ok:
        raise NotReady("The service is not ready", state)
    return ReadyResponse(**state)
