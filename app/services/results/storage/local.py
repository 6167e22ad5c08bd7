"""Result folders in a local directory: written under `.tmp-<name>`, renamed on commit;
`.index/<job_id>` (written at `begin`) names each job's folder."""

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import StorageError
from app.core.logging import get_logger
from app.services.results import layout
from app.services.results.storage import FolderInfo, FolderWriter, Storage

log = get_logger(__name__)

_CHUNK = 256 * 1024


@contextmanager
def storage_errors(where: str) -> Iterator[None]:
    """OSError while writing becomes StorageError naming the results location."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"Could not write results to {where}: {exc}",
                           {"results_dir": where, "reason": str(exc)}) from exc


class _LocalWriter(FolderWriter):
    def __init__(self, storage: "LocalStorage", name: str) -> None:
        self.storage, self.root, self.name = storage, storage.root, name
        self.final = self.root / name
        self.tmp = self.root / (layout.TMP_PREFIX + name)
        with storage_errors(str(self.root)):
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir(parents=True)
            storage.write_index(name)

    def put(self, file: str, data: bytes) -> None:
        with storage_errors(str(self.root)):
            if not data:
                raise OSError(f"{file} came out empty")
            path = self.tmp / file
            path.write_bytes(data)
            if path.stat().st_size != len(data):
                raise OSError(f"{file}: {path.stat().st_size} of {len(data)} bytes written")

    def commit(self) -> None:
        with storage_errors(str(self.root)):
            if self.final.exists():  # a re-run of the same job replaces the earlier folder
                shutil.rmtree(self.final)
            os.rename(self.tmp, self.final)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if not (self.final / layout.METADATA).is_file():  # no earlier run's folder to find
            self.storage.index_entry(self.name).unlink(missing_ok=True)


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root

    def index_entry(self, name: str) -> Path:
        return self.root / layout.INDEX / layout.job_id_of(name)

    def begin(self, name: str) -> FolderWriter:
        return _LocalWriter(self, name)

    def write_index(self, name: str) -> None:
        with storage_errors(str(self.root)):
            _write_atomically(self.index_entry(name), name.encode())

    def indexed(self) -> set[str]:
        index = self.root / layout.INDEX
        return {p.name for p in index.iterdir() if not p.name.startswith(".")} \
            if index.is_dir() else set()

    def folder_location(self, name: str) -> str:
        # Relative to the results folder's parent, never an absolute server path.
        return f"{self.root.name}/{name}"

    def find(self, job_id: str) -> str | None:
        try:
            name = (self.root / layout.INDEX / job_id).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        folder = self.root / name
        if layout.job_id_of(name) != job_id or folder.is_symlink():
            return None
        return name if (folder / layout.METADATA).is_file() else None

    def files(self, name: str) -> list[str]:
        folder = self.root / name
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())

    def read(self, name: str, file: str) -> tuple[int, Iterator[bytes]]:
        path = self.root / name / file
        if not path.is_file() or path.is_symlink():
            raise FileNotFoundError(file)
        return path.stat().st_size, _chunks(path)

    def folders(self) -> list[FolderInfo]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            # `.tmp-<name>`: a folder being written, or left by a process that died
            # mid-job; retention removes it once nothing was written to it for a while.
            writing = path.name.startswith(layout.TMP_PREFIX)
            if (path.name.startswith(".") and not writing) or not path.is_dir():
                continue
            try:
                stats = [f.stat() for f in path.rglob("*") if f.is_file()]
                modified = path.stat().st_mtime  # a finished folder: when it was committed
                if writing:  # when anything was last written to it
                    modified = max([modified, *(st.st_mtime for st in stats)])
                found.append(FolderInfo(path.name, modified, sum(st.st_size for st in stats),
                                        not writing and (path / layout.METADATA).is_file()))
            except OSError:
                continue  # removed meanwhile
        return found

    def delete(self, name: str) -> None:
        with storage_errors(str(self.root)):
            try:
                shutil.rmtree(self.root / name)
            except FileNotFoundError:
                pass  # already gone
            # The entry goes with the job's last folder (a `.tmp-` one may be a re-run's).
            final, entry = name.removeprefix(layout.TMP_PREFIX), self.index_entry(name)
            if not (self.root / final / layout.METADATA).is_file() and entry.is_file():
                entry.unlink(missing_ok=True)

    def put(self, folder: str, file: str, data: bytes) -> None:
        with storage_errors(str(self.root)):
            _write_atomically(self.root / folder / file, data)

    def exists(self, folder: str, file: str) -> bool:
        return (self.root / folder / file).is_file()

    def remove(self, folder: str, file: str) -> None:
        with storage_errors(str(self.root)):
            (self.root / folder / file).unlink(missing_ok=True)

    def modified(self, folder: str) -> dict[str, float]:
        # What a crashed `put` left (`.<file>.<pid>...tmp`) is listed too, so it is swept.
        path, found = self.root / folder, {}
        for file in path.iterdir() if path.is_dir() else []:
            try:
                found[file.name] = file.stat().st_mtime
            except FileNotFoundError:
                continue  # removed meanwhile (its job ended)
        return found

    def writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                return True
        except OSError as exc:
            log.warning("storage_not_writable", error=str(exc))
            return False


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk
