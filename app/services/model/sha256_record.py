"""A checksum for weights whose authors publish none (SAM 2.1): the sha256 of the first
complete download is written beside the file (`<name>.sha256`), and every later start
checks the file against it, so a file changed on disk is noticed, not served.
`SAM_CHECKPOINT_SHA256`, when set, is checked instead of the record."""

import hashlib
from pathlib import Path

from app.core.errors import ModelLoadFailed
from app.core.logging import get_logger

log = get_logger(__name__)


def record_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".sha256")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def record_sha256(checkpoint: Path) -> str:
    """Write the downloaded file's sha256 beside it; returns it."""
    sha256 = file_sha256(checkpoint)
    record_path(checkpoint).write_text(sha256 + "\n")
    log.info("checkpoint_sha256_recorded", checkpoint=str(checkpoint), sha256=sha256)
    return sha256


def verify_recorded(checkpoint: Path, override: str | None) -> None:
    """Check a found checkpoint against its recorded sha256 (or `override`, a sha256 or
    prefix); files without a record are left alone."""
    record = record_path(checkpoint)
    if not record.is_file():
        return
    expected = (override or record.read_text().strip()).lower()
    actual = file_sha256(checkpoint)
    if not actual.startswith(expected):
        raise ModelLoadFailed(
            f"The checkpoint {checkpoint} has sha256 {actual}, not the {expected} "
            f"{'of SAM_CHECKPOINT_SHA256' if override else 'recorded at its first download'}",
            {"checkpoint": str(checkpoint), "sha256": actual, "expected": expected,
             "remedies": [f"delete {checkpoint} and {record} to download it again",
                          "or set SAM_CHECKPOINT_SHA256 to the file's sha256 if it is right"]})
