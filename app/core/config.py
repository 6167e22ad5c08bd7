"""All settings in one place, read from environment variables (or a `.env` file).

Every field below is an environment variable of the same name; see the README's
settings table for the meaning of each.
"""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ModelType = Literal["vit_b", "vit_l", "vit_h", "sam_tiny"]


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

    RESULTS_DIR: Path = Path("results")
    MAX_IMAGE_SIZE_MB: float = Field(20.0, gt=0)
    MAX_IMAGE_PIXELS: int = Field(40_000_000, gt=0)
    MIN_OBJECT_PIXELS: int = Field(100, ge=0)
    # Objects saved per job at most (the largest); the cut is listed in metadata "skipped".
    MAX_OBJECTS: int = Field(500, ge=1)

    # Generations running at once (per model; one model per process) and waiting for a slot.
    MAX_CONCURRENT_JOBS: int = Field(1, ge=1)
    MAX_QUEUED_JOBS: int = Field(8, ge=0)
    # A job running longer answers 504 SEGMENTATION_TIMEOUT; its result is discarded.
    JOB_TIMEOUT_S: float = Field(600.0, gt=0)
    # Retention, enforced oldest first every RETENTION_INTERVAL_S; unset = keep everything.
    RESULTS_TTL_HOURS: float | None = Field(None, gt=0)
    RESULTS_MAX_GB: float | None = Field(None, gt=0)
    RETENTION_INTERVAL_S: float = Field(300.0, gt=0)

    # When set, /segment (and /results) require this value in the X-API-Key header.
    API_KEY: SecretStr | None = None
    # Origins allowed by CORS, comma-separated ("*" for any); empty: no CORS headers.
    CORS_ORIGINS: Annotated[list[str], NoDecode] = []

    DEVICE: Literal["auto", "cpu", "cuda"] = "auto"
    # Mask generation numerics: exact = fp32, matches the stock generator; fast = bf16
    # where the hardware runs it fast (CUDA, CPUs with AMX/AVX512-BF16), else exact
    # with the reason recorded; auto = fast where supported, else exact.
    PRECISION: Literal["auto", "exact", "fast"] = "auto"
    # torch.compile the image encoder and mask decoder (kernels cached under
    # MODEL_CACHE_DIR/torch_compile; eager if compiling fails). auto: the ViT models
    # only; sam_tiny is too small to gain from it and compiling takes minutes.
    COMPILE_MODEL: Literal["auto", "on", "off"] = "auto"
    # Compile and run the model once at startup, so the first request is not slow.
    WARM_UP_AT_STARTUP: bool = True
    # Point prompts decoded per batch (one compiled shape; larger uses more memory).
    DECODE_BATCH_SIZE: int = Field(64, ge=1, le=1024)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["json", "console"] = "json"

    # Fault injection for tests: the first generation raises CUDA out-of-memory.
    SIMULATE_CUDA_OOM: bool = False

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    @property
    def max_image_bytes(self) -> int:
        """MAX_IMAGE_SIZE_MB in bytes (MiB: 1 MB here is 1024 * 1024 bytes)."""
        return int(self.MAX_IMAGE_SIZE_MB * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
