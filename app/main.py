"""The FastAPI application: start-up (model bootstrap), routes and error envelope.

Run with `uvicorn app.main:app`.
"""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app import __version__
from app.core.config import get_settings
from app.core.errors import ServiceError
from app.core.logging import get_logger, setup_logger
from app.lib.model_bootstrap import ensure_model_ready
from app.routes import segment, system
from app.services.model_manager import ModelManager
from app.services.result_writer import sweep_temporary_folders

log = get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    swept = sweep_temporary_folders(settings.RESULTS_DIR)
    log.info("startup", model_type=settings.DEFAULT_MODEL, results_dir=str(settings.RESULTS_DIR),
             swept_temporary_folders=swept)
    try:
        await ensure_model_ready(settings.DEFAULT_MODEL, settings)
        manager = ModelManager(settings)
        await asyncio.to_thread(manager.model)
    except ServiceError as exc:
        log.error("startup_failed", error_code=exc.code, message=exc.message, **exc.details)
        raise
    app.state.manager = manager
    yield
    log.info("shutdown")


def _envelope(status: int, code: str, message: str, details: dict) -> JSONResponse:
    body = {"success": False, "error_code": code, "message": message, "details": details}
    return JSONResponse(status_code=status, content=body)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        where = {"phase": exc.phase} if exc.phase else {}
        log.warning("request_failed", error_code=exc.code, message=exc.message,
                    path=request.url.path, **where)
        return _envelope(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
                  for e in exc.errors()]
        return _envelope(422, "INVALID_REQUEST", "The request is not valid", {"errors": errors})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return _envelope(exc.status_code, code, str(exc.detail), {})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected_error", path=request.url.path)
        return _envelope(500, "INTERNAL_ERROR", "An unexpected error occurred", {})


def create_app() -> FastAPI:
    settings = get_settings()
    # Configured here, after uvicorn set up its own logging, so its records are JSON too.
    setup_logger(settings.LOG_LEVEL, settings.LOG_FORMAT)
    app = FastAPI(title="SAM segmentation service", version=__version__, lifespan=lifespan)
    app.include_router(segment.router)
    app.include_router(system.router)
    _install_error_handlers(app)
    return app


app = create_app()
