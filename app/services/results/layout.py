"""Every name in a result folder, and the job id, decided here and only here.

    <RESULTS_DIR>/<stem>_<YYYYmmddTHHMMSSZ>_<job_id>/
        overlay.png  metadata.json  annotations.json  mask_<i>.png  object_<i>.png

A folder is written as `.tmp-<name>` and renamed when complete; `metadata.json` is
always the last file written (on an object store, where there is no rename, it is the
commit marker). `archive.zip` is never stored: it is made while it is downloaded.
`<RESULTS_DIR>/.index/<job_id>` holds the name of the job's folder (its lookup by id).
`<RESULTS_DIR>/.staging/<job_id>` holds a queued job's image in broker mode (the claim check).
`<stem>` is the input's file name without its suffix, made safe (so a folder says which
image it holds); the job id stays last, so `job_id_of` reads it back whatever the stem.
"""

import re
import uuid
from datetime import datetime
from pathlib import PurePosixPath

OVERLAY = "overlay.png"
METADATA = "metadata.json"
ANNOTATIONS = "annotations.json"
ARCHIVE = "archive.zip"
TMP_PREFIX = ".tmp-"
INDEX = ".index"
STAGING = ".staging"
# The files a finished folder may hold; nothing else is ever served.
RESULT_FILE = re.compile(
    r"(overlay\.png|metadata\.json|annotations\.json|(mask|object)_(0|[1-9]\d{0,5})\.png)")


def mask_file(index: int) -> str:
    return f"mask_{index}.png"


def object_file(index: int) -> str:
    return f"object_{index}.png"


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(job_id: str) -> bool:
    """Whether `job_id` is one the server could have made: a canonical uuid4."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == job_id


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STEM_CHARS = 60  # keeps a folder name well under every file system's 255


def safe_stem(file_name: str) -> str:
    """The file name's stem as a folder-name part: letters, digits, `.`, `_` and `-`
    only (any other run becomes `-`), no leading dot (hidden, or a `.tmp-` folder)."""
    stem = PurePosixPath(file_name.replace("\\", "/")).stem
    return _UNSAFE.sub("-", stem).lstrip(".-")[:_STEM_CHARS].rstrip(".-") or "image"


def folder_name(created: datetime, job_id: str, file_name: str = "image.png") -> str:
    return f"{safe_stem(file_name)}_{created.strftime('%Y%m%dT%H%M%SZ')}_{job_id}"


def job_id_of(folder: str) -> str:
    """The job id a folder is named after (its index entry's name)."""
    return folder.rpartition("_")[2]


def result_paths(base: str, mask_files: list[str], object_files: list[str]) -> dict:
    """Where each file of a result lives under `base` (a folder path or a URL prefix)."""
    return {
        "overlay": f"{base}/{OVERLAY}",
        "masks": [f"{base}/{name}" for name in mask_files],
        "objects": [f"{base}/{name}" for name in object_files],
        "metadata": f"{base}/{METADATA}",
        "annotations": f"{base}/{ANNOTATIONS}",
    }
