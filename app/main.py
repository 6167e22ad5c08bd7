"""The FastAPI application: start-up (model bootstrap, or broker mode's thin front),
routes and error envelope.

Run with `uvicorn app.main:app`.
"""

import asyncio
import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from app import __version__
from app.core.config import get_settings
from app.core.errors import HttpError, InvalidRequest, ServiceError
from app.core.logging import get_logger, log_startup_failure, setup_logger
from app.routes import batches, health, info, jobs, metrics, results, segment, web
from app.routes.request_metrics import MetricsMiddleware
from app.routes.upload_limit import UploadLimitMiddleware
from app.services.batches.service import BatchService
from app.services.jobs import start_jobs
from app.services.results.retention import retention_loop

log = get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    log.info("startup", broker=bool(settings.BROKER_URL), model_type=settings.DEFAULT_MODEL,
             results_dir=str(settings.RESULTS_DIR))
    try:
        app.state.jobs = await start_jobs(settings)
    except ServiceError as exc:
        log_startup_failure(log, exc)
        raise
    app.state.batches = BatchService(settings, app.state.jobs)
    # Retention also removes the stale temporaries of crashed jobs, at once and then
    # every RETENTION_INTERVAL_S.
    retention = asyncio.create_task(retention_loop(settings, app.state.jobs.expire_records))
    # Everything loaded so far (torch, the model, every module) lives until exit: keep it
    # out of the cyclic garbage collector, whose full passes over it would otherwise
    # stall the event loop for ~200 ms under load.
    gc.freeze()
    yield
    retention.cancel()
    await app.state.batches.shutdown()
    # uvicorn has waited for in-flight requests; jobs it cancelled (graceful-shutdown
    # timeout) and background jobs are abandoned and clean up when their thread ends.
    await app.state.jobs.shutdown()


def _install_error_handlers(app: FastAPI) -> None:
    """Where errors become the JSON envelope: every handler answers a ServiceError's
    `envelope()` (`_answer`), so there is one shape and one place that builds it."""

    def _answer(exc: ServiceError, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(exc.envelope(), status_code=exc.status, headers=headers or exc.headers)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        where = {"phase": exc.phase} if exc.phase else {}
        # The details too (the fields a 422 names): the client's answer, for the operator.
        log.warning("request_failed", error_code=exc.code, message=exc.message,
                    details=exc.details, path=request.url.path, **where)
        return _answer(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e), "message": e["msg"]} for e in exc.errors()]
        return await service_error(request, InvalidRequest("The request is not valid",
                                                           {"errors": errors}))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # Starlette's own answers (no such route, wrong method) in the same envelope.
        return _answer(HttpError.of(exc.status_code, str(exc.detail)), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected_error", path=request.url.path)
        return _answer(ServiceError("An unexpected error occurred"))


def _field(error: dict) -> str:
    """A validation error's dotted field path, or `body` for the body as a whole: not
    JSON (FastAPI then locates the error by a character offset), or not an object."""
    path = error["loc"][1:]
    return "body" if error["type"] == "json_invalid" or not path else ".".join(map(str, path))


def create_app() -> FastAPI:
    settings = get_settings()
    # Configured here, after uvicorn set up its own logging, so its records are JSON too.
    setup_logger(settings.LOG_LEVEL, settings.LOG_FORMAT)
    # No redirect for a trailing slash: `/segment/` or `/results/<id>/x/` is a 404 in the
    # envelope (a 307 would also answer before the API key is checked).
    # FastAPIOffline: /docs loads its scripts from this server, not a CDN, so the API page
    # works where the service often runs: machines without internet. No /redoc: its page
    # still fetches a logo from another host, and /docs is the one API page.
    app = FastAPIOffline(title="SAM segmentation service", version=__version__, lifespan=lifespan,
                         redirect_slashes=False, redoc_url=None)
    app.include_router(segment.router)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(health.router)
    app.include_router(info.router)
    app.include_router(results.router)
    app.include_router(metrics.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files, name="static")
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(UploadLimitMiddleware, paths=("/segment", "/jobs"),
                       max_image_bytes=settings.max_image_bytes)
    if settings.CORS_ORIGINS:
        app.add_middleware(CORSMiddleware, allow_origins=settings.CORS_ORIGINS,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["X-API-Key"])
    _install_error_handlers(app)
    return app


app = create_app()
