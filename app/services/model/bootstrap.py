"""Start-up: the one sequence that makes a model ready to serve, used by the server's
lifespan, the CLI, the workers and the benchmark alike.

`prepare_model(settings)`: segment_anything importable -> weights on disk (downloaded
once, verified) -> loaded onto the device (a corrupt cached download is fetched
again, once) -> compiled and run once (WARM_UP_AT_STARTUP).
"""

import asyncio
import importlib.util
import pickle
import time
import zipfile
from pathlib import Path

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.core.logging import get_logger
from app.services.model.checkpoint import (checkpoint_path, download_url, expected_sha256,
                                           local_remedies, offline_remedies)
from app.services.model.download import ensure_checkpoint
from app.services.model.manager import ModelManager
from app.services.model.sha256_record import record_path, record_sha256, verify_recorded

log = get_logger(__name__)
_CORRUPT_SIGNS = ("PytorchStreamReader", "zip archive", "unexpected EOF", "invalid load key")


async def prepare_model(settings: Settings, warm_up: bool | None = None) -> ModelManager:
    """A loaded (and, unless `warm_up` is False, warmed-up) model for `settings`, or
    ModelLoadFailed with remedies."""
    await ensure_model_ready(settings.DEFAULT_MODEL, settings)
    manager = ModelManager(settings)
    await load_with_recovery(manager, settings)
    if settings.WARM_UP_AT_STARTUP if warm_up is None else warm_up:
        await asyncio.to_thread(manager.warm_up)  # compile now, not during the first job
    return manager


async def ensure_model_ready(model_type: str, settings: Settings) -> Path:
    """Check segment_anything is importable and the checkpoint is on disk,
    downloading it once if needed. Returns the checkpoint path."""
    if importlib.util.find_spec("segment_anything") is None:
        raise ModelLoadFailed(
            "segment_anything is not installed",
            {"remedies": ["pip install -r requirements.txt (segment-anything==1.0)"]},
        )
    path = checkpoint_path(model_type, settings)
    if path.is_file():
        size = await asyncio.to_thread(_readable_size, path)
        if size > 0:
            await asyncio.to_thread(verify_recorded, path, settings.SAM_CHECKPOINT_SHA256)
            log.info("checkpoint_found", model_type=model_type, path=str(path), bytes=size)
            return path
    url = download_url(model_type, settings)
    if url is None:
        raise ModelLoadFailed(
            f"No usable checkpoint for {model_type} at {path}",
            {"checkpoint": str(path), "remedies": local_remedies(model_type, path)},
        )
    if settings.OFFLINE:
        raise ModelLoadFailed(
            f"OFFLINE=1 and no checkpoint for {model_type} at {path}; nothing is downloaded",
            {"checkpoint": str(path), "remedies": offline_remedies(url, path)},
        )
    expected = expected_sha256(model_type, settings)
    path = await ensure_checkpoint(url, path, expected, settings.DOWNLOAD_TIMEOUT_S,
                                   connect_timeout_s=settings.DOWNLOAD_CONNECT_TIMEOUT_S,
                                   read_timeout_s=settings.DOWNLOAD_READ_TIMEOUT_S,
                                   attempts=settings.DOWNLOAD_ATTEMPTS)
    if not expected and not record_path(path).is_file():  # none published: remember this one
        await asyncio.to_thread(record_sha256, path)
    return path


async def load_with_recovery(manager: ModelManager, settings: Settings) -> None:
    """Load the manager's model. A cached download that does not load (truncated or
    corrupted: torch.load fails) is moved aside as `<name>.corrupt-<time>` and
    downloaded again, once, unless OFFLINE=1."""
    try:
        await asyncio.to_thread(manager.model)
        return
    except ModelLoadFailed as exc:
        url = download_url(manager.model_type, settings)
        if not (url is not None and manager.checkpoint.is_file() and _looks_corrupt(exc)):
            raise
        if settings.OFFLINE:
            raise ModelLoadFailed(
                f"The cached checkpoint {manager.checkpoint} is corrupt and OFFLINE=1",
                {"checkpoint": str(manager.checkpoint),
                 "remedies": offline_remedies(url, manager.checkpoint)}) from exc
        aside = manager.checkpoint.with_name(f"{manager.checkpoint.name}.corrupt-{int(time.time())}")
        manager.checkpoint.rename(aside)
        log.warning("checkpoint_corrupt_redownloading", checkpoint=str(manager.checkpoint),
                    moved_to=str(aside), url=url, error=_root_message(exc))
    await ensure_model_ready(manager.model_type, settings)
    await asyncio.to_thread(manager.model)


def _looks_corrupt(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (pickle.UnpicklingError, EOFError, zipfile.BadZipFile)):
            return True
        if any(sign in str(seen) for sign in _CORRUPT_SIGNS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_message(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc)


def _readable_size(path: Path) -> int:
    """Size of the file, after proving it can be opened and read."""
    with open(path, "rb") as f:
        f.read(1)
    return path.stat().st_size
