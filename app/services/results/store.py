"""Find finished results on disk for download, and never anything else.

A job id must be a canonical uuid4 (what the server makes) naming exactly one
finished folder `<timestamp>_<job_id>` in RESULTS_DIR (one with its metadata.json);
hidden `.tmp-*` folders (writes in progress) are never served. A file name must match a strict pattern
and be a plain file directly inside that folder. Everything else is NotFound,
so a client cannot tell a forbidden path from a missing one.
"""

import zipfile
from collections.abc import Iterator
from io import RawIOBase
from pathlib import Path

from app.core.errors import NotFound
from app.services.results import layout

MEDIA_TYPES = {".png": "image/png", ".json": "application/json"}


def job_folder(results_dir: Path, job_id: str) -> Path:
    """The finished result folder of `job_id`, or NotFound."""
    if not layout.is_job_id(job_id) or not results_dir.is_dir():
        raise NotFound("No result with this job id", {"job_id": job_id})
    matches = [p for p in results_dir.glob(layout.folder_glob(job_id))
               if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()
               and (p / layout.METADATA).is_file()]
    if len(matches) != 1:
        raise NotFound("No result with this job id", {"job_id": job_id})
    return matches[0]


def result_file(results_dir: Path, job_id: str, name: str) -> Path:
    """One file of a finished result, or NotFound."""
    if layout.RESULT_FILE.fullmatch(name) is None:
        raise NotFound("No such result file", {"job_id": job_id, "file": name})
    path = job_folder(results_dir, job_id) / name
    if not path.is_file() or path.is_symlink():
        raise NotFound("No such result file", {"job_id": job_id, "file": name})
    return path


def media_type(path: Path) -> str:
    return MEDIA_TYPES[path.suffix]


def zip_chunks(folder: Path) -> Iterator[bytes]:
    """The folder's result files as a zip archive, produced file by file in memory.

    Nothing is written to disk, and only one file's compressed bytes are held at a
    time. PNGs are stored (already compressed); JSON is deflated."""
    files = sorted(p for p in folder.iterdir()
                   if layout.RESULT_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink())
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, "w") as archive:
        for path in files:
            method = zipfile.ZIP_STORED if path.suffix == ".png" else zipfile.ZIP_DEFLATED
            archive.write(path, arcname=f"{folder.name}/{path.name}", compress_type=method)
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
