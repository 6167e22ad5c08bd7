"""Start-up: make sure the configured model can be loaded before serving."""

import asyncio
import importlib.util

from app.core.config import Settings, get_settings
from app.core.errors import ModelLoadFailed
from app.core.logging import get_logger
from app.services.checkpoint_download import ensure_checkpoint
from app.services.model_manager import checkpoint_path, checkpoint_url
from app.services.model_registry import MODEL_REGISTRY

log = get_logger(__name__)


async def ensure_model_ready(model_type: str, settings: Settings | None = None):
    """Check segment_anything is importable and the checkpoint is on disk,
    downloading it once if needed. Returns the checkpoint path."""
    settings = settings or get_settings()
    if importlib.util.find_spec("segment_anything") is None:
        raise ModelLoadFailed(
            "segment_anything is not installed",
            {"remedies": ["pip install -r requirements.txt (segment-anything==1.0)"]},
        )
    spec = MODEL_REGISTRY[model_type]
    path = checkpoint_path(model_type, settings)
    if path.is_file():
        size = await asyncio.to_thread(_readable_size, path)
        if size > 0:
            log.info("checkpoint_found", model_type=model_type, path=str(path), bytes=size)
            return path
    url = checkpoint_url(spec, settings)
    if settings.OFFLINE and url is not None and settings.SAM_CHECKPOINT_PATH is None:
        raise ModelLoadFailed(
            f"OFFLINE=1 and no checkpoint for {model_type} at {path}; nothing is downloaded",
            {"checkpoint": str(path), "remedies": offline_remedies(url, path)},
        )
    if settings.SAM_CHECKPOINT_PATH is not None or url is None:
        raise ModelLoadFailed(
            f"No usable checkpoint for {model_type} at {path}",
            {"checkpoint": str(path), "remedies": _local_remedies(model_type, path)},
        )
    expected = settings.SAM_CHECKPOINT_SHA256 or spec.sha256_prefix
    return await ensure_checkpoint(url, path, expected, settings.DOWNLOAD_TIMEOUT_S,
                                   connect_timeout_s=settings.DOWNLOAD_CONNECT_TIMEOUT_S,
                                   read_timeout_s=settings.DOWNLOAD_READ_TIMEOUT_S,
                                   attempts=settings.DOWNLOAD_ATTEMPTS)


def offline_remedies(url: str, path) -> list[str]:
    return [f"copy the checkpoint (from {url}) to {path}",
            "set SAM_CHECKPOINT_PATH to a local checkpoint file",
            "run with DEFAULT_MODEL=sam_tiny (bundled weights)",
            "or unset OFFLINE to allow the one-time download"]


def _readable_size(path) -> int:
    """Size of the file, after proving it can be opened and read."""
    with open(path, "rb") as f:
        f.read(1)
    return path.stat().st_size


def _local_remedies(model_type: str, path) -> list[str]:
    if model_type == "sam_tiny":
        return [f"python scripts/make_tiny_checkpoint.py {path}",
                "or set SAM_CHECKPOINT_PATH to a sam_tiny checkpoint"]
    return [f"place the checkpoint at {path}", "or unset SAM_CHECKPOINT_PATH to download it"]
