"""All settings in one place, read from environment variables (or a `.env` file).

Every field below is an environment variable of the same name; see the README's
settings table for the meaning of each.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelType = Literal["vit_b", "vit_l", "vit_h", "sam_tiny"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    DEFAULT_MODEL: ModelType = "vit_b"
    MODEL_CACHE_DIR: Path = Path("models")
    # Mirror to download the checkpoint from instead of the official URL.
    SAM_CHECKPOINT_URL: str | None = None
    # Explicit local checkpoint (e.g. fine-tuned weights): used as is, never downloaded.
    SAM_CHECKPOINT_PATH: Path | None = None
    # Expected sha256 (or prefix) of a downloaded file; default: the official file's.
    SAM_CHECKPOINT_SHA256: str | None = None
    DOWNLOAD_TIMEOUT_S: float = Field(600.0, gt=0)

    RESULTS_DIR: Path = Path("results")
    MAX_IMAGE_SIZE_MB: float = Field(20.0, gt=0)
    MAX_IMAGE_PIXELS: int = Field(40_000_000, gt=0)
    MIN_OBJECT_PIXELS: int = Field(100, ge=0)

    DEVICE: Literal["auto", "cpu", "cuda"] = "auto"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["json", "console"] = "json"

    # Fault injection for tests: the first generation raises CUDA out-of-memory.
    SIMULATE_CUDA_OOM: bool = False

    @property
    def max_image_bytes(self) -> int:
        """MAX_IMAGE_SIZE_MB in bytes (MiB: 1 MB here is 1024 * 1024 bytes)."""
        return int(self.MAX_IMAGE_SIZE_MB * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
