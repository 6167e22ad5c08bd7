"""The service's typed errors. Services raise these; app.main turns each into the
JSON error envelope `{success, error_code, message, details}` (`envelope()`)."""

from typing import Any


class ServiceError(Exception):
    """Base of every error the service reports to a client."""

    code = "INTERNAL_ERROR"
    status = 500
    phase: str | None = None  # the pipeline phase that failed, set by the pipeline
    headers: dict[str, str] = {}  # extra response headers, e.g. Retry-After

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body every error answers with."""
        return {"success": False, "error_code": self.code, "message": self.message,
                "details": self.details}


class InvalidRequest(ServiceError):
    """A form field is missing or out of range; `details.errors` names each field."""

    code, status = "INVALID_REQUEST", 422


class InvalidImage(ServiceError):
    code, status = "INVALID_IMAGE", 400

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message, {"reason": reason, **details})


class ModelLoadFailed(ServiceError):
    code, status = "MODEL_LOAD_FAILED", 502


class SegmentationFailed(ServiceError):
    code, status = "SEGMENTATION_FAILED", 500


class StorageError(ServiceError):
    """The results folder could not be written (read-only, full disk ...)."""

    code, status = "STORAGE_ERROR", 507


class StorageUnavailable(StorageError):
    """The results store did not answer in time or refused the connection (bounded by
    STORAGE_CONNECT_TIMEOUT_S, STORAGE_READ_TIMEOUT_S, STORAGE_ATTEMPTS): try again later."""

    code, status = "STORAGE_UNAVAILABLE", 503

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.headers = {"Retry-After": "5"}


class NotFound(ServiceError):
    """No such result: unknown job id, unknown file, or a name that is not allowed."""

    code, status = "NOT_FOUND", 404


class HttpError(ServiceError):
    """Starlette's own refusals (no such route, a method it does not allow)."""

    _CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}

    @classmethod
    def of(cls, status: int, message: str) -> "HttpError":
        error = cls(message)
        error.code, error.status = cls._CODES.get(status, "HTTP_ERROR"), status
        return error


class Unauthorized(ServiceError):
    """API_KEY is set and the request's X-API-Key header is missing or wrong."""

    code, status = "UNAUTHORIZED", 401


class ServerBusy(ServiceError):
    """Every generation slot and queue place is taken; `Retry-After` says when to come back."""

    code, status = "SERVER_BUSY", 503

    def __init__(self, message: str, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, {"retry_after_s": retry_after_s, **details})
        self.headers = {"Retry-After": str(retry_after_s)}


class NotReady(ServiceError):
    """The model is not loaded or the results folder is not writable."""

    code, status = "NOT_READY", 503


class SegmentationTimeout(ServiceError):
    """The job ran past JOB_TIMEOUT_S; its result is discarded when its thread ends."""

    code, status = "SEGMENTATION_TIMEOUT", 504

    @classmethod
    def after(cls, timeout_s: float) -> "SegmentationTimeout":
        return cls(f"The job ran longer than JOB_TIMEOUT_S={timeout_s:g}s and was abandoned",
                   {"timeout_s": timeout_s})


class ClientDisconnected(ServiceError):
    """The client went away while its job waited in the queue (nginx's 499)."""

    code, status = "CLIENT_DISCONNECTED", 499


class BrokerUnavailable(ServiceError):
    """Broker mode: Redis (the queue and the job records) cannot be reached."""

    code, status = "BROKER_UNAVAILABLE", 503

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.headers = {"Retry-After": "5"}


class JobInterrupted(ServiceError):
    """In a job record only: the process running the job stopped before it finished."""

    code, status = "JOB_INTERRUPTED", 500


class JobRecordUnreadable(ServiceError):
    """A job's record exists but cannot be read (a damaged file or Redis value)."""

    code, status = "JOB_RECORD_UNREADABLE", 500


class JobRecordLost(ServiceError):
    """Broker mode: the job was accepted, but Redis no longer has its record (restarted
    without persistence, evicted, or expired before a worker took the job)."""

    code, status = "JOB_RECORD_LOST", 500

    def __init__(self, job_id: str) -> None:
        super().__init__("The job was accepted, but the broker (Redis) lost its record: "
                         "restarted without persistence (AOF), evicted or expired it; submit "
                         "the job again", {"job_id": job_id})


class StagedImageUnusable(ServiceError):
    """Broker mode: a queued job's image, kept in the results storage until a worker
    takes the job, is gone (`reason` missing) or not what was uploaded (hash_mismatch)."""

    code, status = "STAGED_IMAGE_UNUSABLE", 500

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message, {"reason": reason, **details})


class JobAbandoned(Exception):
    """Not an answer: raised inside a job's thread once the job was cancelled or timed
    out (`reason`: cancelled or timeout), to stop it at the next phase or batch."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class JobFailed(ServiceError):
    """A job that ran elsewhere (a worker) failed: its recorded error, as it was."""

    def __init__(self, code: str, status: int, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, details)
        self.code, self.status = code, status
