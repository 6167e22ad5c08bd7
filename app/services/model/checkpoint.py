"""Where a model's weights come from: one rule for the path, the URL, and whether the
service may (re)download them.

- `SAM_CHECKPOINT_PATH` wins: an explicit file, used as is and never downloaded.
- `sam_tiny` reads its bundled weights, unless a mirror URL is configured.
- Every other model lives in MODEL_CACHE_DIR and is downloaded from the mirror
  (`SAM_CHECKPOINT_URL`) or the official URL; OFFLINE=1 forbids that download.
"""

from pathlib import Path

from app.core.config import Settings
from app.services.model.registry import BUNDLED_WEIGHTS_DIR, MODEL_REGISTRY


def checkpoint_path(model_type: str, settings: Settings) -> Path:
    """Where this model's weights are read from."""
    spec = MODEL_REGISTRY[model_type]
    if settings.SAM_CHECKPOINT_PATH is not None:
        return settings.SAM_CHECKPOINT_PATH
    if spec.bundled and not settings.SAM_CHECKPOINT_URL:
        return BUNDLED_WEIGHTS_DIR / spec.checkpoint_name
    return settings.MODEL_CACHE_DIR / spec.checkpoint_name


def download_url(model_type: str, settings: Settings) -> str | None:
    """The URL the weights are downloaded from, or None when they never are (an
    explicit file, bundled weights, no official download)."""
    if settings.SAM_CHECKPOINT_PATH is not None:
        return None
    spec = MODEL_REGISTRY[model_type]
    if spec.bundled and not settings.SAM_CHECKPOINT_URL:
        return None
    return settings.SAM_CHECKPOINT_URL or spec.url


def expected_sha256(model_type: str, settings: Settings) -> str | None:
    return settings.SAM_CHECKPOINT_SHA256 or MODEL_REGISTRY[model_type].sha256_prefix


def offline_remedies(url: str, path: Path) -> list[str]:
    """What a person can do when OFFLINE=1 and the weights are missing or corrupt."""
    return [f"copy the checkpoint (from {url}) to {path}",
            "set SAM_CHECKPOINT_PATH to a local checkpoint file",
            "run with DEFAULT_MODEL=sam_tiny (bundled weights)",
            "or unset OFFLINE to allow the one-time download"]


def local_remedies(model_type: str, path: Path) -> list[str]:
    """What a person can do when a checkpoint that is never downloaded is missing."""
    if model_type == "sam_tiny":
        return [f"python -m sam_tiny.random_checkpoint {path}",
                "or set SAM_CHECKPOINT_PATH to a sam_tiny checkpoint"]
    return [f"place the checkpoint at {path}", "or unset SAM_CHECKPOINT_PATH to download it"]
