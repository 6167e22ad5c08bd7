"""manifest.jsonl: one JSON line per input, appended as each one finishes.

On a disk the file is appended to and flushed line by line, so a crash loses at most
the line being written (a torn last line is ignored when read back). An object in a
bucket cannot be appended to: the whole manifest is put again at most every
`S3_FLUSH_S` seconds while the batch runs, and once at the end, so a crash loses at
most the last few seconds of lines (those inputs are simply done again on a re-run).
"""

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from app.core.config import S3Location, get_settings
from app.core.errors import StorageError
from app.schemas.batches import ManifestLine
from app.services.results.storage.s3_client import client_config  # the one S3 bounds rule

MANIFEST = "manifest.jsonl"
S3_FLUSH_S = 5.0


class Manifest(ABC):
    location: str  # where it is, as told to a person: a path or an s3:// URL

    def earlier(self) -> dict[str, ManifestLine]:
        """The last line of each input written by earlier runs (what a re-run resumes)."""
        lines: dict[str, ManifestLine] = {}
        for text in self._read().splitlines():
            try:
                line = ManifestLine.model_validate_json(text)
            except ValidationError:
                continue  # a line torn by a crash: that input is done again
            lines[line.input] = line
        return lines

    @abstractmethod
    def _read(self) -> str: ...

    @abstractmethod
    def append(self, line: ManifestLine) -> None:
        """Record one finished input (blocking; StorageError when it cannot)."""

    @abstractmethod
    def close(self) -> None:
        """Write what is still pending."""


def open_manifest(folder: Path | S3Location) -> Manifest:
    """The manifest.jsonl of `folder` (a local folder or an s3:// location)."""
    return _S3Manifest(folder) if isinstance(folder, S3Location) else _LocalManifest(folder / MANIFEST)


class _LocalManifest(Manifest):
    def __init__(self, path: Path) -> None:
        self.path, self.location = path, str(path)
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a+", encoding="utf-8")
            self._file.seek(0)
            self._text = self._file.read()
            if self._text and not self._text.endswith("\n"):
                self._file.write("\n")  # after a torn line, the next one starts afresh
        except OSError as exc:
            raise StorageError(f"Cannot write the manifest {path}", {"reason": exc.strerror}) from exc

    def _read(self) -> str:
        return self._text

    def append(self, line: ManifestLine) -> None:
        with self._lock:
            self._file.write(line.model_dump_json() + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class _S3Manifest(Manifest):
    def __init__(self, folder: S3Location) -> None:
        self.bucket = folder.bucket
        self.key = f"{folder.prefix}/{MANIFEST}" if folder.prefix else MANIFEST
        self.location = f"s3://{self.bucket}/{self.key}"
        self._client = boto3.session.Session().client("s3", config=client_config(get_settings()))
        self._lock = threading.Lock()
        self._flushed = time.monotonic()
        with self._errors():
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                    raise
                body = b""
        self._lines = [text for text in body.decode().splitlines() if text]
        self._text = "\n".join(self._lines)
        self._pending = False

    def _read(self) -> str:
        return self._text

    def append(self, line: ManifestLine) -> None:
        with self._lock:
            self._lines.append(line.model_dump_json())
            self._pending = True
            if time.monotonic() - self._flushed >= S3_FLUSH_S:
                self._put()

    def close(self) -> None:
        with self._lock:
            if self._pending:
                self._put()

    def _put(self) -> None:
        with self._errors():
            self._client.put_object(Bucket=self.bucket, Key=self.key,
                                    Body=("\n".join(self._lines) + "\n").encode())
        self._flushed, self._pending = time.monotonic(), False

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """boto3's errors as StorageError, naming the manifest."""
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            reason = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            raise StorageError(f"Cannot write the manifest {self.location}", {"reason": reason}) from exc
