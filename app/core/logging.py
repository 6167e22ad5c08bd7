"""Structured logging: lines for a person on a terminal, one JSON object per line otherwise.

LOG_FORMAT=auto (the default) picks the console renderer when stderr is a terminal
and JSON when it is not (a file, a pipe, a log collector); `json` or `console` force
one. On the console a record's `remedies` are listed under it, one per line.

Every record logged while a request is handled carries `job_id` and `phase`,
bound with `bind_job` / `set_phase` as context variables, so they follow the
work into `asyncio.to_thread` workers. uvicorn's own records go through the
same renderer.
"""

import logging
import sys
from typing import Any

import structlog

from app.core.errors import ServiceError

_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def setup_logger(level: str = "INFO", fmt: str = "auto") -> None:
    """Route structlog and the standard library (uvicorn included) to stderr."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer = (_with_remedies(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
                if console else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_after_reported_startup_failure)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", *_torch_loggers()):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _torch_loggers() -> list[str]:
    """torch gives its own loggers (torch, torch._dynamo, ...) a plain-text stderr handler
    and stops them propagating, so a compile's warning ("No CUDA runtime is found")
    would be a line of text among the JSON ones. Those with a handler are rerouted;
    the rest (torch's debug artifacts) keep their own settings."""
    return [name for name, logger in list(logging.root.manager.loggerDict.items())
            if (name == "torch" or name.startswith("torch."))
            and isinstance(logger, logging.Logger) and logger.handlers and not logger.propagate]


def _with_remedies(render: structlog.dev.ConsoleRenderer):
    """The console renderer, with a record's message and remedies on lines of their own."""
    def render_with_remedies(logger: Any, name: str, event_dict: dict) -> str:
        remedies = event_dict.pop("remedies", None)
        if not remedies:
            return render(logger, name, event_dict)
        message = event_dict.pop("message", None)
        lines = [render(logger, name, event_dict)]
        lines += [f"  {message}"] if message else []
        return "\n".join([*lines, "  What to do:", *(f"    - {r}" for r in remedies)])
    return render_with_remedies


_startup_failure_reported = False


def log_startup_failure(log: structlog.stdlib.BoundLogger, exc: ServiceError) -> None:
    """Say once why the server cannot start: its error code, message and remedies.

    uvicorn then logs the lifespan's traceback and "Application startup failed":
    after this record they say nothing new, so they show only with LOG_LEVEL=DEBUG
    and the output ends with what to do."""
    global _startup_failure_reported
    _startup_failure_reported = True
    log.error("startup_failed", error_code=exc.code, message=exc.message, **exc.details)


def _after_reported_startup_failure(record: logging.LogRecord) -> bool:
    return not (_startup_failure_reported and record.name == "uvicorn.error"
                and record.levelno >= logging.ERROR
                and not logging.getLogger().isEnabledFor(logging.DEBUG))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


def bind_job(job_id: str) -> None:
    """Start a job's log context: later records carry this job_id."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(job_id=job_id, phase="received")


def clear_job() -> None:
    """End a job's log context, so that later records of this thread (a worker's next
    task, Celery's own lines included) never carry its job_id."""
    structlog.contextvars.clear_contextvars()


def set_phase(phase: str) -> None:
    structlog.contextvars.bind_contextvars(phase=phase)
