"""Fetch a checkpoint once: stream to a `.part` file, verify, rename atomically.

A file lock next to the destination makes concurrent starts (two workers, two
containers on one volume) wait for one download instead of racing.
"""

import hashlib
import os
import time
from pathlib import Path

import aiohttp
from filelock import AsyncFileLock
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from app.core.errors import ModelLoadFailed
from app.core.logging import get_logger

log = get_logger(__name__)
_CHUNK = 1 << 20


class _DownloadError(Exception):
    """A failed attempt; the reason becomes part of ModelLoadFailed."""


def download_remedies(url: str, dest: Path) -> list[str]:
    """What a person can do when the weights cannot be fetched."""
    return [
        f"check network access to {url}",
        "set SAM_CHECKPOINT_URL to a reachable mirror of the same file",
        f"place the checkpoint by hand at {dest}",
        "set SAM_CHECKPOINT_PATH to a local checkpoint file (no download)",
        "or run offline with DEFAULT_MODEL=sam_tiny (bundled weights)",
    ]


def download_failed(url: str, dest: Path, reason: str) -> ModelLoadFailed:
    return ModelLoadFailed(
        f"Could not download the SAM checkpoint from {url} to {dest}: {reason}",
        {"url": url, "cache_path": str(dest), "reason": reason,
         "remedies": download_remedies(url, dest)},
    )


async def ensure_checkpoint(url: str, dest: Path, sha256_prefix: str | None, timeout_s: float,
                            *, connect_timeout_s: float = 30, read_timeout_s: float = 60,
                            attempts: int = 3) -> Path:
    """Return `dest`, downloading it first if it is not there yet. A failed attempt
    (refused, dropped, stalled past `read_timeout_s`, wrong bytes) is retried with
    exponential backoff, `attempts` times in all."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncFileLock(str(dest) + ".lock"):
        if dest.is_file() and dest.stat().st_size > 0:
            return dest  # another process finished the download while we waited
        part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
        try:
            timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s,
                                            sock_read=read_timeout_s)
            async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.5, max=10),
                    retry=retry_if_exception_type(_DownloadError), reraise=True,
                    before_sleep=lambda state: log.warning(
                        "download_retry", url=url, attempt=state.attempt_number,
                        error=str(state.outcome.exception()))):
                with attempt:
                    await _stream_to(url, part, sha256_prefix, timeout)
            os.replace(part, dest)
        except _DownloadError as exc:
            raise download_failed(url, dest, str(exc)) from exc
        finally:
            part.unlink(missing_ok=True)
    return dest


async def _stream_to(url: str, part: Path, sha256_prefix: str | None,
                     timeout: aiohttp.ClientTimeout) -> None:
    started = time.monotonic()
    digest = hashlib.sha256()
    received = 0
    log.info("download_started", url=url, dest=str(part.parent))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url) as response:
                if response.status != 200:
                    raise _DownloadError(f"HTTP {response.status}")
                expected = response.content_length
                next_report = 0.0
                with open(part, "wb") as out:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if expected and received / expected >= next_report:
                            log.info("download_progress", bytes=received, total=expected,
                                     percent=round(100 * received / expected))
                            next_report += 0.1
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _DownloadError(f"{type(exc).__name__}: {exc}") from exc
    if expected is not None and received != expected:
        raise _DownloadError(f"got {received} bytes, Content-Length said {expected}")
    sha256 = digest.hexdigest()
    if sha256_prefix and not sha256.startswith(sha256_prefix.lower()):
        raise _DownloadError(f"sha256 {sha256} does not start with {sha256_prefix}")
    log.info("download_completed", url=url, bytes=received, sha256=sha256,
             seconds=round(time.monotonic() - started, 2))
