"""Result folders in an S3 bucket (moto's server on loopback, the real boto3 client)."""

import json

import pytest

from app.core.config import S3Location
from app.core.errors import StorageError
from app.services.results.retention import enforce_retention
from app.services.results.downloads import job_folder, result_file, zip_chunks
from app.services.results.storage import s3 as s3_backend
from app.services.results.storage.s3 import S3Storage
from app.services.results.writer import ResultFolder
from tests.images import scene_rgb
from tests.services.results.test_writer import metadata_of, record

JOB = "3f2c6a1e-1b7a-4c55-9f7e-0d7c1c2a9b10"
NAME = f"20260101T000000Z_{JOB}"
INDEX_KEY = f"team/results/.index/{JOB}"


@pytest.fixture
def storage(s3) -> S3Storage:
    return S3Storage(S3Location(s3.BUCKET, "team/results"))


def write(storage, records, commit=True):
    with ResultFolder(storage, NAME) as folder:
        objects, skipped = folder.write_objects(scene_rgb(), records)
        if commit:
            folder.commit(metadata_of(objects, skipped))


def test_committed_folder_has_every_file_and_metadata_is_the_marker(storage, s3, monkeypatch):
    prefix = f"team/results/{NAME}/"
    put, in_bucket_when_marked = s3_backend._S3Writer.put, []

    def watched_put(writer, file, data):
        if file == "metadata.json":
            in_bucket_when_marked.extend(s3.keys())
        put(writer, file, data)

    monkeypatch.setattr(s3_backend._S3Writer, "put", watched_put)
    write(storage, [record(0, 0, 40)])
    files = ["annotations.json", "mask_0.png", "object_0.png", "overlay.png"]
    assert in_bucket_when_marked == [INDEX_KEY] + [prefix + f for f in files]
    assert s3.keys() == [INDEX_KEY] + sorted(prefix + f for f in [*files, "metadata.json"])
    calls: list[str] = []
    storage.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    size, chunks = result_file(storage, JOB, "metadata.json")
    body = b"".join(chunks)
    assert len(body) == size and json.loads(body)["job_id"] == "job"
    assert calls == ["GetObject", "HeadObject", "GetObject"]  # by id: index, marker, file
    assert storage.folder_location(NAME) == f"s3://{s3.BUCKET}/{prefix}".rstrip("/")


def test_uncommitted_folder_is_removed_and_never_visible(storage, s3):
    write(storage, [record(0, 0, 40)], commit=False)
    assert s3.keys() == []
    s3.client().put_object(Bucket=s3.BUCKET, Key=f"team/results/{NAME}/overlay.png", Body=b"x")
    with pytest.raises(Exception) as missing:
        job_folder(storage, JOB)
    assert getattr(missing.value, "code", None) == "NOT_FOUND"


def test_a_rerun_replaces_an_incomplete_folder(storage, s3):
    s3.client().put_object(Bucket=s3.BUCKET, Key=f"team/results/{NAME}/mask_7.png", Body=b"stale")
    write(storage, [record(0, 0, 40)])
    assert not any(k.endswith("mask_7.png") for k in s3.keys())
    s3.client().delete_object(Bucket=s3.BUCKET, Key=INDEX_KEY)  # as an older version left it
    enforce_retention(storage, ttl_hours=None, max_bytes=None)
    assert storage.find(JOB) == NAME


def test_archive_streams_every_file(storage):
    import io
    import zipfile

    write(storage, [record(0, 0, 40), record(50, 60, 20)])
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_chunks(storage, NAME))))
    assert sorted(n.split("/")[1] for n in archive.namelist()) == [
        "annotations.json", "mask_0.png", "mask_1.png", "metadata.json", "object_0.png",
        "object_1.png", "overlay.png"]
    assert archive.testzip() is None


def test_retention_removes_old_results_and_abandoned_incomplete_folders(storage, s3):
    write(storage, [record(0, 0, 40)])
    s3.client().put_object(Bucket=s3.BUCKET, Key="team/results/20260101T000000Z_x/overlay.png", Body=b"x")
    kept = enforce_retention(storage, ttl_hours=1, max_bytes=None, incomplete_grace_s=3600)
    assert kept.removed == 0 and kept.incomplete_removed == 0 and len(s3.keys()) == 7
    later = enforce_retention(storage, ttl_hours=1, max_bytes=None, now=4e9, incomplete_grace_s=3600)
    assert later.removed == 1 and later.incomplete_removed == 1 and s3.keys() == []


def test_size_bound_applies_to_the_bucket(storage, s3):
    write(storage, [record(0, 0, 40)])
    report = enforce_retention(storage, ttl_hours=None, max_bytes=10)
    assert report.removed == 1 and s3.keys() == []
    with pytest.raises(Exception) as missing:
        job_folder(storage, JOB)
    assert getattr(missing.value, "code", None) == "NOT_FOUND"


def test_store_gone_raises_storage_error_and_is_not_writable(storage, s3):
    s3.stop()
    assert storage.writable() is False
    with pytest.raises(StorageError):
        write(storage, [record(0, 0, 40)])
