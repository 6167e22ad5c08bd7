"""Broker mode's claim check: a queued job's image waits in the results storage, not in Redis.

The front stores the upload once, as `.staging/<job_id>` beside the result folders
(`stage`), and queues the job with that key and the image's sha256 instead of its
bytes, so a queued job costs Redis about a kilobyte whatever the image's size, and
jobs may wait for workers (none running at all, while they scale up from zero) with
Redis holding nothing large. The worker reads the image back and checks its hash
(`redeem`), and removes it once the job's outcome is recorded, whatever it is
(`release`); until then a re-delivery (a worker killed mid-job) still finds it.
What a front that died between storing and queueing left is removed by `sweep`, on
retention's schedule, once older than the job records' time to live.
"""

import hashlib

from app.core.errors import StagedImageUnusable, StorageError
from app.core.logging import get_logger
from app.schemas import JobRequest
from app.schemas.params import StagedImage
from app.services.results import layout
from app.services.results.storage import Storage

log = get_logger(__name__)


def staged_key(job_id: str) -> str:
    """Where job `job_id`'s image waits, relative to RESULTS_DIR."""
    return f"{layout.STAGING}/{job_id}"


def stage(storage: Storage, request: JobRequest) -> JobRequest:
    """Store the image (StorageError when it cannot); the request as it is queued:
    the image's key and sha256, no bytes."""
    storage.put(layout.STAGING, request.job_id, request.image)
    staged = StagedImage(key=staged_key(request.job_id),
                         sha256=hashlib.sha256(request.image).hexdigest())
    return request.model_copy(update={"image": b"", "staged_image": staged})


def redeem(storage: Storage, request: JobRequest) -> JobRequest:
    """The queued request with its image read back and checked; StagedImageUnusable when
    it is gone or is not what was uploaded. A request that carries its image as it is."""
    staged = request.staged_image
    if staged is None:
        return request
    details = {"key": staged.key}
    if staged.key != staged_key(request.job_id):  # never read a key another job names
        raise StagedImageUnusable("missing", "The job names another job's image", **details)
    try:
        image = b"".join(storage.read(layout.STAGING, request.job_id)[1])
    except FileNotFoundError as exc:
        raise StagedImageUnusable("missing", "The job's uploaded image is no longer in the "
                                  "results storage", **details) from exc
    if hashlib.sha256(image).hexdigest() != staged.sha256:
        raise StagedImageUnusable("hash_mismatch", "The job's stored image is not the one "
                                  "uploaded (its sha256 differs)", **details)
    return request.model_copy(update={"image": image, "staged_image": None})


def is_staged(storage: Storage, job_id: str) -> bool:
    """Whether an accepted job's image still waits (its job was accepted and has not
    ended); False when the storage cannot tell."""
    try:
        return storage.exists(layout.STAGING, job_id)
    except StorageError:
        return False


def release(storage: Storage, job_id: str) -> None:
    """Remove the job's image once it ended; never raises (`sweep` removes what stays)."""
    try:
        storage.remove(layout.STAGING, job_id)
    except StorageError as exc:
        log.warning("staged_image_not_removed", job_id=job_id, error=exc.message)


def sweep(storage: Storage, older_than_s: float, now: float) -> int:
    """Remove staged images older than `older_than_s` (no job can still need them)."""
    return storage.sweep_files(layout.STAGING, older_than_s, now)
