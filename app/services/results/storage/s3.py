"""Result folders in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2) through boto3.

Keys are `<prefix>/<folder>/<file>`, and `<prefix>/.index/<job_id>` (put at `begin`)
holds the name of the job's folder. An object store has no rename, so every file is
put first and metadata.json last: its presence is the commit marker. Endpoint and
credentials come from boto3's standard variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION). Every call is bounded (STORAGE_CONNECT_TIMEOUT_S,
STORAGE_READ_TIMEOUT_S, STORAGE_ATTEMPTS), so a store that hangs or went away answers
503 STORAGE_UNAVAILABLE in seconds instead of holding a request or a job; the
readiness probe (`writable`) gets one short attempt. botocore's error texts name the
endpoint URL, an internal address: they are logged in full, and a client is told
only what failed.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from botocore.handlers import add_expect_header

from app.core.config import S3Location, Settings, get_settings
from app.core.errors import StorageError
from app.services.results import layout
from app.services.results.storage import FolderInfo, FolderWriter, Storage, log
from app.services.results.storage.s3_client import (PROBE_CONFIG, client_config, missing_key,
                                                     store_errors)

_CHUNK = 256 * 1024


class S3Storage(Storage):
    def __init__(self, location: S3Location, settings: Settings | None = None) -> None:
        self.location = location
        self.bucket = location.bucket
        self._prefix = f"{location.prefix}/" if location.prefix else ""
        self._config = client_config(settings or get_settings())
        self._local = threading.local()  # boto3 clients are thread-safe; sessions are not

    @property
    def client(self):
        if not hasattr(self._local, "client"):
            self._local.client = boto3.session.Session().client("s3", config=self._config)
        return self._local.client

    def errors(self) -> AbstractContextManager[None]:
        return store_errors(self.location)

    def key(self, name: str, file: str = "") -> str:
        return f"{self._prefix}{name}/{file}"

    def index_key(self, name: str) -> str:
        return f"{self._prefix}{layout.INDEX}/{layout.job_id_of(name)}"

    def begin(self, name: str) -> FolderWriter:
        self._delete_files(name)  # what an interrupted run of this job left
        self.write_index(name)
        return _S3Writer(self, name)

    def write_index(self, name: str) -> None:
        with self.errors():
            self.client.put_object(Bucket=self.bucket, Key=self.index_key(name), Body=name.encode())

    def indexed(self) -> set[str]:
        return {o["Key"].rsplit("/", 1)[1] for o in self._objects(f"{self._prefix}{layout.INDEX}/")}

    def folder_location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}".rstrip("/")

    def find(self, job_id: str) -> str | None:
        try:
            name = b"".join(self.read(layout.INDEX, job_id)[1]).decode()
        except FileNotFoundError:
            return None
        if layout.job_id_of(name) != job_id:
            return None
        return name if self._committed(name) else None

    def _committed(self, name: str) -> bool:
        return self.exists(name, layout.METADATA)

    def files(self, name: str) -> list[str]:
        return sorted(obj["Key"].rsplit("/", 1)[1] for obj in self._objects(self.key(name)))

    def read(self, name: str, file: str) -> tuple[int, Iterator[bytes]]:
        try:
            with self.errors():
                answer = self.client.get_object(Bucket=self.bucket, Key=self.key(name, file))
        except StorageError as exc:
            if _missing(exc):
                raise FileNotFoundError(file) from exc
            raise
        return answer["ContentLength"], answer["Body"].iter_chunks(_CHUNK)

    def folders(self) -> list[FolderInfo]:
        grouped: dict[str, list[dict]] = {}
        for obj in self._objects(self._prefix):
            name, _, file = obj["Key"][len(self._prefix):].partition("/")
            if file and not name.startswith("."):
                grouped.setdefault(name, []).append(obj)
        return [FolderInfo(name, max(o["LastModified"].timestamp() for o in objs),
                           sum(o["Size"] for o in objs),
                           any(o["Key"].endswith("/" + layout.METADATA) for o in objs))
                for name, objs in grouped.items()]

    def delete(self, name: str) -> None:
        self._delete_files(name)
        with self.errors():
            self.client.delete_object(Bucket=self.bucket, Key=self.index_key(name))

    def _delete_files(self, name: str) -> None:
        # metadata.json (the commit marker) first: no reader sees a complete folder
        # with files already gone
        keys = sorted(({"Key": o["Key"]} for o in self._objects(self.key(name))),
                      key=lambda k: not k["Key"].endswith("/" + layout.METADATA))
        with self.errors():
            for start in range(0, len(keys), 1000):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys[start:start + 1000]})
                if answer.get("Errors"):  # a batch delete answers 200 even when some failed
                    first = answer["Errors"][0]
                    raise StorageError(f"Could not remove {first['Key']} from {self.location}: "
                                       f"{first.get('Message')}",
                                       {"results_dir": str(self.location),
                                        "reason": first.get("Code", "unknown")})

    def writable(self) -> bool:
        probe, client = f"{self._prefix}.probe-{uuid.uuid4()}", self._probe_client()
        try:
            client.put_object(Bucket=self.bucket, Key=probe, Body=b"ok")
            client.delete_object(Bucket=self.bucket, Key=probe)
            return True
        except (BotoCoreError, ClientError) as exc:
            log.warning("storage_not_writable", error=str(exc))
            return False

    def put(self, folder: str, file: str, data: bytes) -> None:
        with self.errors():
            self.client.put_object(Bucket=self.bucket, Key=self.key(folder, file), Body=data)

    def exists(self, folder: str, file: str) -> bool:
        try:
            with self.errors():
                return bool(self.client.head_object(Bucket=self.bucket, Key=self.key(folder, file)))
        except StorageError as exc:
            if _missing(exc):
                return False
            raise

    def remove(self, folder: str, file: str) -> None:
        with self.errors():  # S3 answers a missing key's delete with success
            self.client.delete_object(Bucket=self.bucket, Key=self.key(folder, file))

    def modified(self, folder: str) -> dict[str, float]:
        return {o["Key"].rsplit("/", 1)[1]: o["LastModified"].timestamp()
                for o in self._objects(self.key(folder))}

    def _probe_client(self):
        if not hasattr(self._local, "probe"):
            probe = boto3.session.Session().client("s3", config=PROBE_CONFIG)
            # Expect: 100-continue waits a second for a store that never answers.
            probe.meta.events.unregister("before-call.s3", add_expect_header)
            self._local.probe = probe
        return self._local.probe

    def _objects(self, prefix: str) -> list[dict]:
        with self.errors():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix)
            return [obj for page in pages for obj in page.get("Contents", [])]


def _missing(exc: StorageError) -> bool:
    """The store answered that the key does not exist (not: the store is unreachable)."""
    return missing_key(exc.__cause__)


class _S3Writer(FolderWriter):
    def __init__(self, storage: S3Storage, name: str) -> None:
        self.storage, self.name = storage, name
        self.started = time.time()

    def put(self, file: str, data: bytes) -> None:
        if not data:
            raise StorageError(f"{file} came out empty", {"reason": f"{file} came out empty"})
        with self.storage.errors():
            self.storage.client.put_object(Bucket=self.storage.bucket,
                                           Key=self.storage.key(self.name, file), Body=data)

    def commit(self) -> None:
        pass  # metadata.json, put last, is the commit marker

    def abort(self) -> None:
        try:
            self.storage.delete(self.name)
        except StorageError as exc:
            log.warning("result_not_removed", folder=self.name, error=exc.message)
