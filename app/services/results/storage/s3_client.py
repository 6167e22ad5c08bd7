"""How S3Storage talks to the bucket: its boto3 client settings, and botocore's errors
turned into the service's (logged in full, answered without the endpoint URL)."""

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as StoreUnreachable

from app.core.config import S3Location, Settings
from app.core.errors import StorageError, StorageUnavailable
from app.core.logging import get_logger

log = get_logger(__name__)
# The readiness probe's one attempt: /health/ready answers within 2 s while the store hangs.
PROBE_CONFIG = Config(connect_timeout=0.7, read_timeout=0.7, retries={"total_max_attempts": 1})


def client_config(settings: Settings) -> Config:
    """Every call bounded: a store that hangs fails in seconds, never holds a request."""
    return Config(connect_timeout=settings.STORAGE_CONNECT_TIMEOUT_S,
                  read_timeout=settings.STORAGE_READ_TIMEOUT_S,
                  retries={"total_max_attempts": settings.STORAGE_ATTEMPTS, "mode": "standard"})


@contextmanager
def store_errors(location: S3Location) -> Iterator[None]:
    """botocore's errors as StorageError (refused) or StorageUnavailable (unreachable)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        error = _client_error(location, exc)
        if not missing_key(exc):  # a missing key is an answer, not a failure
            log.warning("storage_call_failed", error_code=error.code, error=str(exc))
        raise error from exc


def missing_key(exc: BaseException | None) -> bool:
    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] in ("NoSuchKey", "404")


def _client_error(location: S3Location, exc: Exception) -> StorageError:
    """What a client is told: what failed and why in a word, never botocore's text."""
    details = {"results_dir": str(location)}
    if isinstance(exc, (StoreUnreachable, HTTPClientError)):  # timeouts, refused, reset
        return StorageUnavailable(f"The results store {location} cannot be reached",
                                  {**details, "reason": type(exc).__name__})
    code = exc.response["Error"].get("Code", "unknown") if isinstance(exc, ClientError) \
        else type(exc).__name__
    return StorageError(f"The results store {location} refused the request ({code})",
                        {**details, "reason": code})
