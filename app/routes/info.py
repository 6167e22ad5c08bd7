"""GET /info: what this server is and runs."""

from fastapi import APIRouter, Request

from app import __version__
from app.routes.deps import ManagerDep
from app.schemas import InfoResponse

router = APIRouter()


@router.get("/info", response_model=InfoResponse)
async def info(request: Request, manager: ManagerDep) -> InfoResponse:
    # Read from the OpenAPI schema, so the list is the published contract itself.
    paths = request.app.openapi()["paths"]
    endpoints = sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)
    return InfoResponse(name="sam-segmentation-service", version=__version__,
                        model=manager.model_type, device=manager.device,
                        precision=manager.precision,
                        precision_fallback_reason=manager.precision_fallback_reason,
                        endpoints=endpoints)
