"""What a batch reads: image files found from its arguments, each with the name the
manifest gives it (relative to the argument it came from, so `a.jpg` and `sub/a.jpg`
stay apart).

An argument is a file, a folder (searched recursively), a glob (`photos/**/*.jpg`,
expanded here, so a quoted pattern works), or `s3://bucket/prefix/` (every image key
under it). Nothing that does not exist is silently dropped: a missing path, a glob
or prefix without images, or a bucket that does not exist is an InvalidRequest.
"""

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from app.core.config import get_settings
from app.core.errors import InvalidRequest, StorageError
from app.services.results.storage.s3_client import client_config  # the one S3 bounds rule

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class BatchInput:
    input: str  # the manifest's name for it: relative to its argument
    read: Callable[[], bytes]  # blocking: call it off the event loop
    source: str  # where it is: the path as found, or its s3:// URL

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.input).name


def find_inputs(arguments: list[str]) -> list[BatchInput]:
    """Every input of the arguments, in order, each argument's sorted; a file found by
    two arguments is kept once, and two files of the same relative name are told apart
    by naming the later one where it is. An argument that yields nothing is an
    InvalidRequest."""
    found: dict[str, BatchInput] = {}
    seen: set[str] = set()
    for argument in arguments:
        items = _s3_inputs(argument) if argument.startswith("s3://") else _local_inputs(argument)
        for item in items:
            identity = item.source if argument.startswith("s3://") else os.path.realpath(item.source)
            if identity in seen:
                continue
            seen.add(identity)
            if item.input in found:  # another file of the same relative name
                item = BatchInput(item.source, item.read, item.source)
            found.setdefault(item.input, item)
    return list(found.values())


def local_folder_inputs(folder: Path, within: Path | None = None) -> list[BatchInput]:
    """The images under `folder` (recursively), named relative to it; with `within`,
    only files that are really inside it (a symlink out of it is left out)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and (within is None or p.resolve().is_relative_to(within)))
    return [BatchInput(p.relative_to(folder).as_posix(), p.read_bytes, str(p)) for p in files]


def _local_inputs(argument: str) -> list[BatchInput]:
    path = Path(argument)
    if path.is_dir():
        items = local_folder_inputs(path)
    elif path.is_file():  # as given: the pipeline checks its content, whatever its suffix
        items = [BatchInput(path.name, path.read_bytes, str(path))]
    elif _GLOB_CHARS & set(argument):
        root = _glob_root(argument)
        items = [BatchInput(Path(p).relative_to(root).as_posix(), Path(p).read_bytes, p)
                 for p in sorted(glob.glob(argument, recursive=True))
                 if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES]
    else:
        raise _invalid(argument, "not_found", "No such file or folder")
    if not items:
        raise _invalid(argument, "no_images", "No images found")
    return items


def _glob_root(pattern: str) -> Path:
    """The folder before a pattern's first wildcard: what its matches are relative to."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    return Path(*parts[:fixed]) if fixed else Path(".")


def _s3_inputs(argument: str) -> list[BatchInput]:
    bucket, _, prefix = argument[len("s3://"):].partition("/")
    if not bucket:
        raise _invalid(argument, "no_bucket", "s3:// needs a bucket name")
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""  # a prefix is a folder
    client = boto3.session.Session().client("s3", config=client_config(get_settings()))
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", [])
                      if PurePosixPath(o["Key"]).suffix.lower() in IMAGE_SUFFIXES)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchBucket":
            raise _invalid(argument, "no_such_bucket", f"The bucket {bucket} does not exist") from exc
        raise StorageError(f"Could not list {argument}", {"reason": exc.response["Error"]["Code"]}) from exc
    except BotoCoreError as exc:
        raise StorageError(f"Could not list {argument}", {"reason": type(exc).__name__}) from exc
    if not keys:
        raise _invalid(argument, "no_images", "No images found under this prefix")

    def reader(key: str) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                return client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except (BotoCoreError, ClientError) as exc:
                raise OSError(f"cannot read s3://{bucket}/{key}") from exc
        return read

    return [BatchInput(key[len(prefix):], reader(key), f"s3://{bucket}/{key}") for key in keys]


def _invalid(argument: str, reason: str, message: str) -> InvalidRequest:
    return invalid_input(reason, f"{message}: {argument}")


def invalid_input(reason: str, message: str, **details: str) -> InvalidRequest:
    """A batch input that cannot be used: 422 INVALID_REQUEST, `details.reason` says why."""
    return InvalidRequest(message, {"reason": reason, **details,
                                    "errors": [{"field": "input", "message": message}]})
