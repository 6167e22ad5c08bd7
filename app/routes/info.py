"""GET /info: what this server is and runs."""

from fastapi import APIRouter, Request

from app import __version__
from app.routes.deps import JobsDep, SettingsDep
from app.schemas import InfoResponse
from app.schemas.api import Limits
from app.services.model.families import family_of, request_parameters
from app.services.model.registry import MODEL_REGISTRY

router = APIRouter()


@router.get("/info", response_model=InfoResponse)
async def info(request: Request, jobs: JobsDep, settings: SettingsDep) -> InfoResponse:
    # Read from the OpenAPI schema, so the list is the published contract itself.
    paths = request.app.openapi()["paths"]
    endpoints = sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)
    model = jobs.model_state()  # broker mode: the workers load the model, "workers" device
    return InfoResponse(name="sam-segmentation-service", version=__version__,
                        model=model.model_type, device=model.device, precision=model.precision,
                        precision_fallback_reason=model.precision_fallback_reason,
                        precision_reason=model.precision_reason,
                        endpoints=endpoints, limits=Limits.of(settings),
                        family=family_of(settings.DEFAULT_MODEL).name, models=list(MODEL_REGISTRY),
                        parameters=request_parameters(settings.DEFAULT_MODEL,
                                                      settings.MIN_OBJECT_PIXELS))
