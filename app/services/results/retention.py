"""Keep the results folder bounded: age (RESULTS_TTL_HOURS) and size (RESULTS_MAX_GB).

Only complete result folders (those with a metadata.json) are candidates, oldest
first by modification time; `.tmp-*` folders of jobs in progress are never touched.
A background task started in the lifespan runs `enforce_retention` periodically.
"""

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.config import Settings
from app.core.logging import get_logger
from app.services.results import layout

log = get_logger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    removed: int
    freed_bytes: int
    kept: int
    kept_bytes: int


def enforce_retention(results_dir: Path, ttl_hours: float | None,
                      max_bytes: int | None, now: float | None = None) -> RetentionReport:
    """Delete result folders older than `ttl_hours`, then the oldest until the
    rest fit in `max_bytes`. None disables a bound."""
    folders = sorted(_result_folders(results_dir), key=lambda f: f[1])
    now = time.time() if now is None else now
    total = sum(size for _, _, size in folders)
    removed = freed = 0
    for path, mtime, size in folders:
        too_old = ttl_hours is not None and now - mtime > ttl_hours * 3600
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed, freed, total = removed + 1, freed + size, total - size
    return RetentionReport(removed, freed, len(folders) - removed, total)


async def retention_loop(settings: Settings) -> None:
    """Enforce retention now and every RETENTION_INTERVAL_S, until cancelled."""
    max_bytes = None if settings.RESULTS_MAX_GB is None else int(settings.RESULTS_MAX_GB * 1024**3)
    while True:
        try:
            report = await asyncio.to_thread(enforce_retention, settings.RESULTS_DIR,
                                             settings.RESULTS_TTL_HOURS, max_bytes)
            if report.removed:
                log.info("retention_enforced", removed=report.removed, freed_bytes=report.freed_bytes,
                         kept=report.kept, kept_bytes=report.kept_bytes)
        except OSError as exc:
            log.warning("retention_failed", error=str(exc))
        await asyncio.sleep(settings.RETENTION_INTERVAL_S)


async def results_writable(results_dir: Path) -> bool:
    """Whether a file can be created (and removed) in the results folder right now."""
    def probe() -> bool:
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=results_dir):
                return True
        except OSError:
            return False
    return await asyncio.to_thread(probe)


def _result_folders(results_dir: Path) -> list[tuple[Path, float, int]]:
    if not results_dir.is_dir():
        return []
    found = []
    for path in results_dir.iterdir():
        if path.name.startswith(".") or not (path / layout.METADATA).is_file():
            continue
        try:
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            found.append((path, path.stat().st_mtime, size))
        except OSError:
            continue  # removed meanwhile
    return found
