"""RESULTS_DIR is told apart in one place: a local path or s3://bucket/prefix."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import S3Location, Settings


def test_results_dir_is_a_path_or_a_bucket_location():
    assert Settings(RESULTS_DIR="results").RESULTS_DIR == Path("results")
    assert Settings(RESULTS_DIR="s3://bucket/team/a/").RESULTS_DIR == S3Location("bucket", "team/a")
    assert str(Settings(RESULTS_DIR="s3://bucket").RESULTS_DIR) == "s3://bucket"
    with pytest.raises(ValidationError):
        Settings(RESULTS_DIR="s3://")


def test_job_records_live_beside_local_results_by_default(tmp_path):
    assert Settings(RESULTS_DIR=tmp_path).jobs_dir == tmp_path / ".jobs"
    assert Settings(RESULTS_DIR="s3://bucket/p").jobs_dir == Path("jobs")
