"""GET /info: what this server is and runs."""

from fastapi import APIRouter, Request

from app import __version__
from app.routes.deps import ManagerDep, SettingsDep
from app.schemas import InfoResponse
from app.schemas.api import Limits

router = APIRouter()


@router.get("/info", response_model=InfoResponse)
async def info(request: Request, manager: ManagerDep, settings: SettingsDep) -> InfoResponse:
    # Read from the OpenAPI schema, so the list is the published contract itself.
    paths = request.app.openapi()["paths"]
    endpoints = sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)
    if manager is None:  # broker mode: the workers load the model and pick the device
        return InfoResponse(name="sam-segmentation-service", version=__version__,
                            model=settings.DEFAULT_MODEL, device="workers",
                            precision=settings.PRECISION, endpoints=endpoints,
                            limits=Limits.of(settings))
    return InfoResponse(name="sam-segmentation-service", version=__version__,
                        model=manager.model_type, device=manager.device,
                        precision=manager.precision,
                        precision_fallback_reason=manager.precision_fallback_reason,
                        endpoints=endpoints, limits=Limits.of(settings))
