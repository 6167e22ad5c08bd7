"""Where result folders live: a local folder or an S3-compatible bucket, one interface.

A folder is written through a `FolderWriter`: every file first, metadata.json last.
On a local disk the files go to `.tmp-<name>` and the folder is renamed on commit; on
an object store (no rename) metadata.json itself is the commit marker. Either way a
folder without its metadata.json is invisible to readers and removed by `sweep` once
stale, and `begin` replaces whatever an earlier, interrupted run of the same job left.

Single files beside the folders (`put`, `exists`, `remove`; `modified` lists them for
retention) hold what is not a result: a queued job's image in broker mode
(`.staging/<job_id>`, app.services.jobs.claim_check).

Requests find a folder by its job id in O(1): `begin` writes an index entry
(`.index/<job_id>` -> the folder's name) before any file, and `find` reads that entry
and checks the commit marker. Only retention lists (`folders`, `sweep`, `indexed`; it
also writes the entries results from before the index lack).
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from app.core.config import S3Location, Settings
from app.core.errors import StorageError
from app.core.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class FolderInfo:
    """One result folder as retention sees it."""

    name: str
    modified: float  # seconds since the epoch
    size: int  # bytes
    complete: bool  # metadata.json is there


class FolderWriter(ABC):
    @abstractmethod
    def put(self, file: str, data: bytes) -> None:
        """Store one file of the folder (StorageError when it cannot)."""

    @abstractmethod
    def commit(self) -> None:
        """Make the folder visible; called after metadata.json was put, last."""

    @abstractmethod
    def abort(self) -> None:
        """Remove whatever was written; never raises (what it cannot remove, `sweep`
        removes later)."""


class Storage(ABC):
    """The result folders of one RESULTS_DIR."""

    @abstractmethod
    def begin(self, name: str) -> FolderWriter:
        """Start writing folder `name`, replacing an incomplete one of that name."""

    @abstractmethod
    def write_index(self, name: str) -> None:
        """Write the index entry job id -> `name` (StorageError when it cannot)."""

    @abstractmethod
    def indexed(self) -> set[str]:
        """The job ids that have an index entry (a listing: for retention only)."""

    @abstractmethod
    def folder_location(self, name: str) -> str:
        """How the /segment answer names the folder (`results/<name>`, `s3://...`)."""

    @abstractmethod
    def find(self, job_id: str) -> str | None:
        """The name of job `job_id`'s complete folder, if there is one: read from the
        index, never by listing (StorageError when the storage cannot answer)."""

    @abstractmethod
    def files(self, name: str) -> list[str]:
        """The file names in folder `name`."""

    @abstractmethod
    def read(self, name: str, file: str) -> tuple[int, Iterator[bytes]]:
        """A file's size and its bytes in chunks (FileNotFoundError when absent)."""

    @abstractmethod
    def folders(self) -> list[FolderInfo]:
        """Every result folder, complete or not (a listing: for retention only)."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove folder `name`, everything in it and its index entry (StorageError
        when something could not be removed; a folder already gone is no error)."""

    @abstractmethod
    def writable(self) -> bool:
        """Whether a file can be written (and removed) right now."""

    @abstractmethod
    def put(self, folder: str, file: str, data: bytes) -> None:
        """Store one file outside any result folder, whole or not at all (StorageError
        when it cannot); `read` reads it back."""

    @abstractmethod
    def exists(self, folder: str, file: str) -> bool:
        """Whether `folder/file` is there (one look-up, no listing)."""

    @abstractmethod
    def remove(self, folder: str, file: str) -> None:
        """Remove `folder/file`; one already gone is no error (StorageError otherwise)."""

    @abstractmethod
    def modified(self, folder: str) -> dict[str, float]:
        """Each file in `folder` and when it was written (a listing: for retention only)."""

    def sweep_files(self, folder: str, older_than_s: float, now: float) -> int:
        """Remove the files of `folder` written more than `older_than_s` ago; how many."""
        removed = 0
        for file, modified in self.modified(folder).items():
            if now - modified > older_than_s:
                try:
                    self.remove(folder, file)
                    removed += 1
                except StorageError as exc:
                    log.warning("file_not_removed", folder=folder, file=file, error=exc.message)
        return removed

    def sweep(self, older_than_s: float, now: float) -> int:
        """Remove the incomplete folders nothing was written to for `older_than_s`
        (what a crashed or unreachable job left; never one still being written, so
        other processes sharing the storage keep theirs); how many were removed."""
        removed = 0
        for folder in self.folders():
            if not folder.complete and now - folder.modified > older_than_s:
                removed += self.delete_logged(folder.name)
        return removed

    def delete_logged(self, name: str) -> int:
        """`delete` for background work: 1 when removed, 0 (and a warning) when not."""
        try:
            self.delete(name)
        except StorageError as exc:
            log.warning("result_not_removed", folder=name, error=exc.message)
            return 0
        return 1


def open_storage(settings: Settings) -> Storage:
    """The storage of settings.RESULTS_DIR (one per location and process)."""
    return _storage(settings.RESULTS_DIR)


@lru_cache
def _storage(location) -> Storage:
    if isinstance(location, S3Location):
        from app.services.results.storage.s3 import S3Storage

        return S3Storage(location)
    from app.services.results.storage.local import LocalStorage

    return LocalStorage(location)
