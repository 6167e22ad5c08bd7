"""Start-up load with one recovery: a cached download that does not load is fetched again.

A truncated or corrupted file in MODEL_CACHE_DIR makes torch.load fail (for example
"PytorchStreamReader failed reading zip archive"). When the file is one we
downloaded (a URL is known, no explicit SAM_CHECKPOINT_PATH) and OFFLINE is off,
it is moved aside as `<name>.corrupt-<time>` and downloaded again, once.
"""

import asyncio
import pickle
import time
import zipfile

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.core.logging import get_logger
from app.lib.model_bootstrap import ensure_model_ready, offline_remedies
from app.services.model_manager import ModelManager, checkpoint_url
from app.services.model_registry import MODEL_REGISTRY

log = get_logger(__name__)
_CORRUPT_SIGNS = ("PytorchStreamReader", "zip archive", "unexpected EOF", "invalid load key")


async def load_model(manager: ModelManager, settings: Settings) -> None:
    """Load the manager's model; re-download a corrupt cached checkpoint once."""
    try:
        await asyncio.to_thread(manager.model)
        return
    except ModelLoadFailed as exc:
        url = checkpoint_url(MODEL_REGISTRY[manager.model_type], settings)
        in_cache = settings.SAM_CHECKPOINT_PATH is None and url is not None
        if not (in_cache and manager.checkpoint.is_file() and _looks_corrupt(exc)):
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
