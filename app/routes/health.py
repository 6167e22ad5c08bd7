"""Health probes (always open, never need the API key).

- GET /health: `{"status": "ok", "model_loaded": ...}`, for people and simple checks.
- GET /health/live: the process answers (its event loop runs).
- GET /health/ready: the model is loaded and the results folder is writable; 503
  NOT_READY (with `details` saying which) otherwise.
"""

from fastapi import APIRouter

from app.core.errors import NotReady
from app.routes.deps import JobsDep, ManagerDep, SettingsDep
from app.schemas import ErrorResponse, HealthResponse, LiveResponse, ReadyResponse
from app.services.results.retention import results_writable

router = APIRouter()


@router.get("/health", response_model=HealthResponse)
async def health(manager: ManagerDep) -> HealthResponse:
    return HealthResponse(status="ok", model_loaded=manager.loaded)


@router.get("/health/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    return LiveResponse()


@router.get("/health/ready", response_model=ReadyResponse, responses={503: {"model": ErrorResponse}})
async def ready(manager: ManagerDep, settings: SettingsDep, jobs: JobsDep) -> ReadyResponse:
    writable = await results_writable(settings.RESULTS_DIR)
    state = {"model_loaded": manager.loaded, "results_writable": writable,
             "jobs_running": jobs.running, "jobs_waiting": jobs.waiting}
    if not (manager.loaded and writable):
        raise NotReady("The service is not ready", state)
    return ReadyResponse(**state)
