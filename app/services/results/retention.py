"""Keep the results bounded: age (RESULTS_TTL_HOURS) and size (RESULTS_MAX_GB), on a
local disk and in a bucket alike.

Complete result folders (those with a metadata.json) are candidates, oldest first.
A folder without metadata.json is a write in progress, or what a dead worker left:
the storage's `sweep` removes it once nothing was written to it for
`incomplete_grace_s` (longer than any job may run). A background task started in the
lifespan runs `enforce_retention` at once and periodically, with the job records' own
expiry (`also`). A folder that could not be removed is logged and not counted.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.config import Settings
from app.core.errors import StorageError
from app.core.logging import get_logger
from app.services.results import layout
from app.services.results.storage import FolderInfo, Storage, open_storage

log = get_logger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    removed: int
    freed_bytes: int
    kept: int
    kept_bytes: int
    incomplete_removed: int = 0


def enforce_retention(storage: Storage, ttl_hours: float | None, max_bytes: int | None,
                      now: float | None = None, incomplete_grace_s: float | None = None,
                      ) -> RetentionReport:
    """Delete result folders older than `ttl_hours`, then the oldest until the rest
    fit in `max_bytes`, and abandoned incomplete folders. None disables a bound."""
    now = time.time() if now is None else now
    swept = 0 if incomplete_grace_s is None else storage.sweep(incomplete_grace_s, now)
    folders = sorted((f for f in storage.folders() if f.complete), key=lambda f: f.modified)
    _index_unindexed(storage, folders)
    total = sum(f.size for f in folders)
    removed = freed = 0
    for folder in folders:
        too_old = ttl_hours is not None and now - folder.modified > ttl_hours * 3600
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big) or not storage.delete_logged(folder.name):
            continue
        removed, freed, total = removed + 1, freed + folder.size, total - folder.size
    return RetentionReport(removed, freed, len(folders) - removed, total, swept)


def _index_unindexed(storage: Storage, folders: list[FolderInfo]) -> None:
    """Results written before lookups by id had an index (an upgraded service) get
    their entry, so GET /results finds them again after the first retention pass."""
    indexed = storage.indexed()
    for folder in folders:
        job_id = layout.job_id_of(folder.name)
        if layout.is_job_id(job_id) and job_id not in indexed:
            storage.write_index(folder.name)


async def retention_loop(settings: Settings, also: Callable[[], int] | None = None) -> None:
    """Enforce retention now and every RETENTION_INTERVAL_S, until cancelled. `also`
    (the job records' expiry) runs on the same schedule."""
    max_bytes = None if settings.RESULTS_MAX_GB is None else int(settings.RESULTS_MAX_GB * 1024**3)
    storage = open_storage(settings)
    while True:
        try:
            report = await asyncio.to_thread(enforce_retention, storage, settings.RESULTS_TTL_HOURS,
                                             max_bytes, None, settings.visibility_timeout_s)
            if report.removed or report.incomplete_removed:
                log.info("retention_enforced", removed=report.removed, freed_bytes=report.freed_bytes,
                         kept=report.kept, kept_bytes=report.kept_bytes,
                         incomplete_removed=report.incomplete_removed)
            if also is not None:
                expired = await asyncio.to_thread(also)
                if expired:
                    log.info("job_records_expired", removed=expired)
        except (OSError, StorageError) as exc:
            log.warning("retention_failed", error=str(exc))
        await asyncio.sleep(settings.RETENTION_INTERVAL_S)


async def results_writable(settings: Settings) -> bool:
    """Whether a file can be created (and removed) in RESULTS_DIR right now."""
    return await asyncio.to_thread(open_storage(settings).writable)
