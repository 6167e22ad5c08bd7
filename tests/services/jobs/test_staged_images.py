"""The claim check on both storages: a real folder, and the bucket of `make s3`'s own
server (scripts/local_s3.py: moto on loopback, the real boto3 client)."""

import os
import subprocess
import sys
import time

import pytest

from app.core.config import S3Location, Settings
from app.core.errors import StagedImageUnusable
from app.schemas import JobRequest
from app.services.jobs import claim_check
from app.services.jobs.broker import BrokerJobs
from app.services.results.storage.local import LocalStorage
from app.services.results.storage.s3 import S3Storage
from tests.conftest import REPO, free_port, stop_process
from tests.images import image_bytes


@pytest.fixture(scope="module")
def local_s3():
    """`make s3`'s server; its first line of output says it is up and the bucket made."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(REPO / "scripts" / "local_s3.py"),
                                "--port", str(port), "--bucket", "staging-test"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "bucket staging-test" in process.stdout.readline()
        exports = process.stdout.readline().split()[1:]
        yield dict(pair.split("=", 1) for pair in exports)
    finally:
        stop_process(process, grace_s=5)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, monkeypatch):
    if request.param == "local":
        return LocalStorage(tmp_path / "results")
    settings = request.getfixturevalue("local_s3")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert settings["RESULTS_DIR"] == "s3://staging-test/dev"
    return S3Storage(S3Location("staging-test", f"dev-{time.monotonic_ns()}"))


def test_a_staged_image_is_redeemed_checked_and_released(storage):
    image = image_bytes()
    queued = claim_check.stage(storage, JobRequest(image=image))
    assert queued.image == b"" and queued.staged_image.key == f".staging/{queued.job_id}"
    assert len(queued.model_dump_json()) < 1024  # what Redis holds, whatever the image
    assert claim_check.is_staged(storage, queued.job_id)
    assert claim_check.redeem(storage, queued).image == image

    storage.put(".staging", queued.job_id, image + b"tampered")
    with pytest.raises(StagedImageUnusable) as mismatch:
        claim_check.redeem(storage, queued)
    assert mismatch.value.details == {"reason": "hash_mismatch", "key": queued.staged_image.key}
    other = queued.model_copy(update={"staged_image": claim_check.stage(
        storage, JobRequest(image=image)).staged_image})
    with pytest.raises(StagedImageUnusable):  # a message naming another job's image
        claim_check.redeem(storage, other)

    claim_check.release(storage, queued.job_id)
    claim_check.release(storage, queued.job_id)  # already gone: no error
    assert not claim_check.is_staged(storage, queued.job_id)
    with pytest.raises(StagedImageUnusable) as missing:
        claim_check.redeem(storage, queued)
    assert missing.value.code == "STAGED_IMAGE_UNUSABLE"
    assert missing.value.details["reason"] == "missing"
    # one image is left (`other`'s); it goes only once older than the grace period
    assert claim_check.sweep(storage, 3600, time.time()) == 0
    assert claim_check.sweep(storage, 3600, time.time() + 3601 + 5) == 1
    assert storage.modified(".staging") == {}


def test_staged_images_expire_with_the_job_records(tmp_path):
    """What a front that died between storing an image and queueing its job left goes
    once older than the records' time to live (RESULTS_TTL_HOURS)."""
    settings = Settings(BROKER_URL="redis://127.0.0.1:9/0", RESULTS_DIR=tmp_path,
                        RESULTS_TTL_HOURS=1)
    jobs = BrokerJobs(settings)  # no Redis needed: the sweep only reads the storage
    abandoned = claim_check.stage(jobs.storage, JobRequest(image=b"old")).job_id
    waiting = claim_check.stage(jobs.storage, JobRequest(image=b"new")).job_id
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / ".staging" / abandoned, (two_hours_ago, two_hours_ago))
    jobs.expire_records()
    assert sorted(p.name for p in (tmp_path / ".staging").iterdir()) == [waiting]
