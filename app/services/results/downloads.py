"""Find finished results in the storage for download, and never anything else.

A job id must be a canonical uuid4 (what the server makes) whose index entry names a
finished folder `<timestamp>_<job_id>` (one with its metadata.json): one lookup by id,
never a listing. Hidden `.tmp-*` folders and folders still being written are never
served. A file name must match a
strict pattern and be a file directly inside that folder. Everything else is
NotFound, so a client cannot tell a forbidden path from a missing one.
"""

import time
import zipfile
from collections.abc import Iterator
from io import RawIOBase

from app.core.errors import NotFound
from app.services.results import layout
from app.services.results.storage import Storage

MEDIA_TYPES = {".png": "image/png", ".json": "application/json"}


def job_folder(storage: Storage, job_id: str) -> str:
    """The name of the finished result folder of `job_id`, or NotFound."""
    name = storage.find(job_id) if layout.is_job_id(job_id) else None
    if name is None:
        raise NotFound("No result with this job id", {"job_id": job_id})
    return name


def result_file(storage: Storage, job_id: str, name: str) -> tuple[int, Iterator[bytes]]:
    """One file of a finished result, as its size and its bytes in chunks, or NotFound."""
    if layout.RESULT_FILE.fullmatch(name) is None:
        raise NotFound("No such result file", {"job_id": job_id, "file": name})
    folder = job_folder(storage, job_id)
    try:
        return storage.read(folder, name)
    except FileNotFoundError:
        raise NotFound("No such result file", {"job_id": job_id, "file": name}) from None


def media_type(name: str) -> str:
    return MEDIA_TYPES[name[name.rindex("."):]]


def zip_chunks(storage: Storage, folder: str) -> Iterator[bytes]:
    """The folder's result files as a zip archive, produced file by file in memory.

    Nothing is written to disk, and only one file's bytes are held at a time. PNGs
    are stored (already compressed); JSON is deflated."""
    files = [f for f in storage.files(folder) if layout.RESULT_FILE.fullmatch(f)]
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, "w") as archive:
        for name in files:
            info = zipfile.ZipInfo(f"{folder}/{name}", time.gmtime()[:6])
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            _, chunks = storage.read(folder, name)
            with archive.open(info, "w") as entry:
                for chunk in chunks:
                    entry.write(chunk)
                    yield sink.take()
    yield sink.take()  # the central directory, written on close


class _ChunkSink(RawIOBase):
    """A write-only, unseekable stream: zipfile then writes data descriptors and
    never seeks back, so its output can be sent as it is produced."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data
