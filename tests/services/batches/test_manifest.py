"""manifest.jsonl: lines flushed as they go on a disk, a torn line skipped; in a bucket
(no appends) the object rewritten while the batch runs, not only at its end."""

from app.core.config import S3Location
from app.schemas.batches import ManifestLine
from app.services.batches import manifest as manifest_module
from app.services.batches.manifest import open_manifest

LINE = ManifestLine(input="sub/a.png", status="succeeded", job_id="j1", objects_count=2, seconds=0.5)


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_line_starts_afresh(tmp_path):
    (tmp_path / "manifest.jsonl").write_text(LINE.model_dump_json() + "\n" + '{"input": "b.p')
    manifest = open_manifest(tmp_path)
    assert manifest.earlier() == {"sub/a.png": LINE}
    manifest.append(LINE.model_copy(update={"input": "b.png"}))  # visible before close
    assert set(open_manifest(tmp_path).earlier()) == {"sub/a.png", "b.png"}
    manifest.close()


def test_a_bucket_manifest_is_rewritten_while_the_batch_runs(s3, monkeypatch):
    monkeypatch.setattr(manifest_module, "S3_FLUSH_S", 0.0)  # every line, for the test
    manifest = open_manifest(S3Location(s3.BUCKET, "runs/1"))
    manifest.append(LINE)
    body = s3.client().get_object(Bucket=s3.BUCKET, Key="runs/1/manifest.jsonl")["Body"].read()
    assert ManifestLine.model_validate_json(body.decode().splitlines()[0]) == LINE
    manifest.close()
    assert open_manifest(S3Location(s3.BUCKET, "runs/1")).earlier() == {"sub/a.png": LINE}
