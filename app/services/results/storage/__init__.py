"""Where result folders live: a local folder or an S3-compatible bucket, one interface.

A folder is written through a `FolderWriter`: every file first, metadata.json last.
On a local disk the files go to `.tmp-<name>` and the folder is renamed on commit; on
an object store (no rename) metadata.json itself is the commit marker. Either way a
folder without its metadata.json is invisible to readers and removed by retention,
and `begin` replaces whatever an earlier, interrupted run of the same job left.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from app.core.config import S3Location, Settings


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
        """Remove whatever was written; never raises."""


class Storage(ABC):
    """The result folders of one RESULTS_DIR."""

    @abstractmethod
    def begin(self, name: str) -> FolderWriter:
        """Start writing folder `name`, replacing an incomplete one of that name."""

    @abstractmethod
    def folder_location(self, name: str) -> str:
        """How the /segment answer names the folder (`results/<name>`, `s3://...`)."""

    @abstractmethod
    def complete_folder(self, suffix: str) -> str | None:
        """The name of the one complete folder whose name ends with `suffix`, if any."""

    @abstractmethod
    def files(self, name: str) -> list[str]:
        """The file names in folder `name`."""

    @abstractmethod
    def read(self, name: str, file: str) -> tuple[int, Iterator[bytes]]:
        """A file's size and its bytes in chunks (FileNotFoundError when absent)."""

    @abstractmethod
    def folders(self) -> list[FolderInfo]:
        """Every result folder, complete or not."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove folder `name` and everything in it."""

    @abstractmethod
    def writable(self) -> bool:
        """Whether a file can be written (and removed) right now."""


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
