"""The service's typed errors. Services raise these; one handler in app.main
turns each into the JSON error envelope `{success, error_code, message, details}`."""

from typing import Any


class ServiceError(Exception):
    """Base of every error the service reports to a client."""

    code = "INTERNAL_ERROR"
    status = 500
    phase: str | None = None  # the pipeline phase that failed, set by the pipeline

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(ServiceError):
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
