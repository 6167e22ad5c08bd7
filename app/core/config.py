"""All settings in one place, read from environment variables (or a `.env` file).

Every field below is an environment variable of the same name; see the README's
settings table for the meaning of each.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.services.model.registry import MODEL_REGISTRY

# The registry's names: a model added there is accepted here and offered by the CLI.
ModelType = Literal[tuple(MODEL_REGISTRY)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class S3Location:
    """RESULTS_DIR=s3://bucket/prefix: result folders in an S3-compatible bucket."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def _results_location(value: object) -> object:
    """The one place RESULTS_DIR is told apart: `s3://bucket[/prefix]` or a local path."""
    if isinstance(value, str) and value.startswith("s3://"):
        bucket, _, prefix = value[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError("RESULTS_DIR=s3://... needs a bucket name")
        return S3Location(bucket, prefix.strip("/"))
    return value


ResultsLocation = Annotated[Path | S3Location, BeforeValidator(_results_location)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    DEFAULT_MODEL: ModelType = "vit_b"
    MODEL_CACHE_DIR: Path = Path("models")
    # Mirror to download the checkpoint from instead of the official URL.
    SAM_CHECKPOINT_URL: str | None = None
    # Explicit local checkpoint (e.g. fine-tuned weights): used as is, never downloaded.
    SAM_CHECKPOINT_PATH: Path | None = None
    # Expected sha256 (or prefix) of a downloaded file; default: the official file's.
    SAM_CHECKPOINT_SHA256: str | None = None
    DOWNLOAD_TIMEOUT_S: float = Field(600.0, gt=0)
    # Per-attempt connect / between-bytes read timeouts, and attempts before giving up.
    DOWNLOAD_CONNECT_TIMEOUT_S: float = Field(30.0, gt=0)
    DOWNLOAD_READ_TIMEOUT_S: float = Field(60.0, gt=0)
    DOWNLOAD_ATTEMPTS: int = Field(3, ge=1, le=10)
    # Never touch the network: missing weights fail at once, with the remedies.
    OFFLINE: bool = False

    # A local folder, or s3://bucket/prefix (endpoint and credentials from the standard
    # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
    RESULTS_DIR: ResultsLocation = Path("results")
    # Job records of the async job API in embedded mode; default RESULTS_DIR/.jobs
    # (or ./jobs when RESULTS_DIR is a bucket).
    JOBS_DIR: Path | None = None
    MAX_IMAGE_SIZE_MB: float = Field(20.0, gt=0)
    MAX_IMAGE_PIXELS: int = Field(40_000_000, gt=0)
    MIN_OBJECT_PIXELS: int = Field(100, ge=0)
    # Objects saved per job at most (the largest); the cut is listed in metadata "skipped".
    MAX_OBJECTS: int = Field(500, ge=1)

    # Generations running at once (per model; one model per process) and waiting for a slot.
    MAX_CONCURRENT_JOBS: int = Field(1, ge=1)
    MAX_QUEUED_JOBS: int = Field(8, ge=0)
    # A job running longer answers 504 SEGMENTATION_TIMEOUT; its result is discarded. It
    # counts from when the job starts running, never queue time (app.services.jobs.queue).
    JOB_TIMEOUT_S: float = Field(600.0, gt=0)
    # Retention, enforced oldest first every RETENTION_INTERVAL_S; unset = keep everything.
    RESULTS_TTL_HOURS: float | None = Field(None, gt=0)
    RESULTS_MAX_GB: float | None = Field(None, gt=0)
    RETENTION_INTERVAL_S: float = Field(300.0, gt=0)

    # Broker mode: redis://host:port/db makes this process a thin front and jobs run on
    # `python -m app worker` processes; unset, everything runs in this process.
    BROKER_URL: str | None = None
    # A job whose worker died is delivered again after JOB_TIMEOUT_S plus this margin
    # (the broker's visibility timeout), so a job still running never starts twice.
    REDELIVERY_MARGIN_S: float = Field(60.0, ge=0)
    # A running job whose worker has not beaten for this long is requeued at once
    # (status `requeued`, `attempt` + 1), long before the visibility timeout.
    WORKER_LOST_AFTER_S: float = Field(30.0, gt=0)
    # The results bucket: per-call connect / read bounds and attempts, so a store that
    # hangs fails a request in seconds (503 STORAGE_UNAVAILABLE) instead of holding it.
    STORAGE_CONNECT_TIMEOUT_S: float = Field(2.0, gt=0)
    STORAGE_READ_TIMEOUT_S: float = Field(5.0, gt=0)
    STORAGE_ATTEMPTS: int = Field(2, ge=1, le=10)
    # A worker serves its Prometheus metrics on this port (unset: none).
    WORKER_METRICS_PORT: int | None = Field(None, ge=1, le=65535)
    # Exists while a worker has its model loaded and reaches Redis (its readiness probe).
    WORKER_READY_FILE: Path = Path("/tmp/sam-worker-ready")

    # Batches: POST /batches reads server-side folders only under this one (unset: none,
    # s3:// prefixes only); jobs a batch keeps submitted and not yet finished, at most.
    BATCH_INPUT_ROOT: Path | None = None
    BATCH_MAX_IN_FLIGHT: int = Field(16, ge=1, le=10_000)

    # When set, /segment, /jobs and /results require this value in the X-API-Key header.
    API_KEY: SecretStr | None = None
    # Origins allowed by CORS, comma-separated ("*" for any); empty: no CORS headers.
    CORS_ORIGINS: Annotated[list[str], NoDecode] = []

    DEVICE: Literal["auto", "cpu", "cuda"] = "auto"
    # Mask generation numerics: exact = fp32, matches the stock generator; fast = bf16
    # where the hardware runs it fast (CUDA, CPUs with AMX/AVX512-BF16), else exact
    # with the reason recorded; auto = fast where it was measured to pay (the rule and
    # its evidence: engine/precision.py), else exact.
    PRECISION: Literal["auto", "exact", "fast"] = "auto"
    # Compile the image encoder and mask decoder: SAM 1 `exact` ahead of time into
    # packages under MODEL_CACHE_DIR/aot_packages (a restart loads them), else
    # torch.compile (kernels under MODEL_CACHE_DIR/torch_compile), else eager. auto:
    # every model but sam_tiny, too small to gain from it (compiling takes minutes).
    COMPILE_MODEL: Literal["auto", "on", "off"] = "auto"
    # Load the compiled packages (or compile and run the model once) at startup, so
    # the first request is not slow.
    WARM_UP_AT_STARTUP: bool = True
    # Point prompts decoded per batch (one compiled shape; larger uses more memory).
    DECODE_BATCH_SIZE: int = Field(32, ge=1, le=1024)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # auto: lines for a person when stderr is a terminal, JSON lines otherwise.
    LOG_FORMAT: Literal["auto", "json", "console"] = "auto"

    # Fault injection for tests: the first generation raises CUDA out-of-memory.
    SIMULATE_CUDA_OOM: bool = False

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    @property
    def jobs_dir(self) -> Path:
        """Where embedded mode keeps its job records."""
        if self.JOBS_DIR is not None:
            return self.JOBS_DIR
        return self.RESULTS_DIR / ".jobs" if isinstance(self.RESULTS_DIR, Path) else Path("jobs")

    @property
    def visibility_timeout_s(self) -> float:
        """Seconds before the broker hands an unacknowledged job to another worker."""
        return self.JOB_TIMEOUT_S + self.REDELIVERY_MARGIN_S

    @property
    def results_ttl_s(self) -> float | None:
        return None if self.RESULTS_TTL_HOURS is None else self.RESULTS_TTL_HOURS * 3600

    @property
    def max_image_bytes(self) -> int:
        """MAX_IMAGE_SIZE_MB in bytes (MiB: 1 MB here is 1024 * 1024 bytes)."""
        return int(self.MAX_IMAGE_SIZE_MB * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
