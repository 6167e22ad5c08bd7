"""The FastAPI application: start-up (model bootstrap), routes and error envelope.

Run with `uvicorn app.main:app`.
"""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app import __version__
from app.core.config import get_settings
from app.core.errors import InvalidImage, ServiceError
from app.core.logging import get_logger, setup_logger
from app.lib.checkpoint_recovery import load_model
from app.lib.model_bootstrap import ensure_model_ready
from app.routes import health, metrics, results, segment, system, web
from app.routes.upload_limit import UploadLimitMiddleware
from app.services.job_queue import JobQueue
from app.services.metrics import MetricsMiddleware
from app.services.model_manager import ModelManager
from app.services.result_writer import sweep_temporary_folders
from app.services.retention import retention_loop

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
        await load_model(manager, settings)
        if settings.WARM_UP_AT_STARTUP:  # compile now, not during the first request
            await asyncio.to_thread(manager.warm_up)
    except ServiceError as exc:
        log.error("startup_failed", error_code=exc.code, message=exc.message, **exc.details)
        # The log line above says everything; a fresh exception keeps the
        # traceback uvicorn prints down to a few lines instead of the whole chain.
        raise RuntimeError(f"{exc.code}: {exc.message}") from None
    app.state.manager = manager
    app.state.jobs = JobQueue(settings.MAX_CONCURRENT_JOBS, settings.MAX_QUEUED_JOBS,
                              settings.JOB_TIMEOUT_S)
    retention = asyncio.create_task(retention_loop(settings))
    yield
    # uvicorn has waited for in-flight requests; jobs it cancelled (graceful-shutdown
    # timeout) are abandoned and clean up after themselves when their thread ends.
    retention.cancel()
    still_running = await app.state.jobs.drain(settings.JOB_TIMEOUT_S)
    log.info("shutdown", jobs_drained=still_running)


def _envelope(status: int, code: str, message: str, details: dict,
              headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"success": False, "error_code": code, "message": message, "details": details}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        where = {"phase": exc.phase} if exc.phase else {}
        log.warning("request_failed", error_code=exc.code, message=exc.message,
                    path=request.url.path, **where)
        return _envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
                  for e in exc.errors()]
        return _envelope(422, "INVALID_REQUEST", "The request is not valid", {"errors": errors})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 413:  # UploadLimitMiddleware on /segment
            too_large = InvalidImage("too_large", "The upload exceeds MAX_IMAGE_SIZE_MB",
                                     max_bytes=get_settings().max_image_bytes)
            too_large.headers = {"Connection": "close"}  # stop reading the rest of the body
            return await service_error(request, too_large)
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
    app.include_router(health.router)
    app.include_router(system.router)
    app.include_router(results.router)
    app.include_router(metrics.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files, name="static")
    app.add_middleware(MetricsMiddleware)
    # Refused by Content-Length before parsing, or once the counted bytes pass it.
    app.add_middleware(UploadLimitMiddleware, paths=("/segment",), max_bytes=settings.max_upload_bytes)
    if settings.CORS_ORIGINS:
        app.add_middleware(CORSMiddleware, allow_origins=settings.CORS_ORIGINS,
                           allow_methods=["GET", "POST"], allow_headers=["X-API-Key"])
    _install_error_handlers(app)
    return app


app = create_app()
