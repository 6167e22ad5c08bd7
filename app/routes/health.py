"""GET /health/live and GET /health/ready: probes for orchestrators (always open).

`live` answers as long as the event loop does; `ready` also needs the model
loaded and the results folder writable, and answers 503 NOT_READY otherwise.
"""

from fastapi import APIRouter

from app.core.errors import NotReady
from app.routes.deps import JobsDep, ManagerDep, SettingsDep
from app.schemas import ErrorResponse, LiveResponse, ReadyResponse
from app.services.retention import results_writable

router = APIRouter(prefix="/health")


@router.get("/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    return LiveResponse()


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ErrorResponse}})
async def ready(manager: ManagerDep, settings: SettingsDep, jobs: JobsDep) -> ReadyResponse:
    writable = await results_writable(settings.RESULTS_DIR)
    state = {"model_loaded": manager.loaded, "results_writable": writable,
             "jobs_running": jobs.running, "jobs_waiting": jobs.waiting}
    if not (manager.loaded and writable):
        raise NotReady("The service is not ready", state)
    return ReadyResponse(**state)
