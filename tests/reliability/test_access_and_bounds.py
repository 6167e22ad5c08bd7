"""API key, CORS, MAX_OBJECTS and retention, on one real server."""

import json
import os
import time

import pytest
import requests

from app.services.results.retention import enforce_retention
from app.services.results.storage import local
from app.services.results.storage.local import LocalStorage
from tests.conftest import LiveServer, tiny_env
from tests.images import image_bytes
from tests.reliability.helpers import assert_envelope, post_image

KEY = "s3cret-key"


def _result_folder(results, name: str, age_hours: float, size: int = 1000):
    folder = results / name
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text("{}")
    (folder / "overlay.png").write_bytes(b"\0" * size)
    stamp = time.time() - age_hours * 3600
    os.utime(folder, (stamp, stamp))
    return folder


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, tiny_checkpoint):
    """One server for the module (its tests change nothing the others read)."""
    workdir = tmp_path_factory.mktemp("guarded")
    results = workdir / "results"
    _result_folder(results, "old", age_hours=48)
    _result_folder(results, "recent", age_hours=0.1)
    (results / ".tmp-crashed").mkdir()  # left by a process that died an hour ago
    hour_ago = time.time() - 3600
    os.utime(results / ".tmp-crashed", (hour_ago, hour_ago))
    (results / ".tmp-writing").mkdir()  # another process's, on a shared volume
    server = LiveServer(workdir, {**tiny_env(tiny_checkpoint, workdir), "API_KEY": KEY,
                                  "CORS_ORIGINS": "http://allowed.example", "MAX_OBJECTS": "1",
                                  "RESULTS_TTL_HOURS": "24"})
    server.wait_ready()
    yield server
    server.stop()


def test_segment_needs_the_api_key_and_health_stays_open(guarded):
    assert_envelope(post_image(guarded.url, image_bytes()), 401, "UNAUTHORIZED")
    wrong = post_image(guarded.url, image_bytes(), headers={"X-API-Key": "nope"})
    assert_envelope(wrong, 401, "UNAUTHORIZED")
    for path in ("/health", "/health/live", "/health/ready"):
        assert requests.get(guarded.url + path, timeout=5).status_code == 200


def test_max_objects_keeps_the_largest_and_records_the_cut(guarded):
    # No NMS: the grid's duplicate masks all survive, so there are many to cut.
    response = post_image(guarded.url, image_bytes(), headers={"X-API-Key": KEY},
                          box_nms_thresh="1.0")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objects_count"] == 1
    folder = guarded.results_dir / body["output_dir"].split("/")[-1]
    metadata = json.loads((folder / "metadata.json").read_text())
    cut = [s for s in metadata["skipped"] if s["reason"] == "max_objects"]
    assert cut and all(s["truncated_to"] == 1 for s in cut)
    assert all(s["area"] <= metadata["objects"][0]["area"] for s in cut)


def test_cors_allows_only_the_configured_origin(guarded):
    def preflight(origin: str) -> requests.Response:
        return requests.options(guarded.url + "/segment", timeout=5, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight("http://allowed.example").headers["access-control-allow-origin"] == "http://allowed.example"
    assert "access-control-allow-origin" not in preflight("http://evil.example").headers


def test_retention_at_startup_removed_expired_results_only(guarded):
    names = sorted(p.name for p in guarded.results_dir.iterdir())
    assert "old" not in names and "recent" in names
    assert ".tmp-crashed" not in names and ".tmp-writing" in names


def test_size_bound_removes_oldest_first(tmp_path):
    for age, name in enumerate(["newest", "middle", "oldest"]):
        _result_folder(tmp_path, name, age_hours=age, size=10_000)
    report = enforce_retention(LocalStorage(tmp_path), ttl_hours=None, max_bytes=25_000)
    assert report.removed == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["middle", "newest"]


def test_a_folder_left_half_written_is_removed_once_idle_past_the_grace(tmp_path):
    """A worker that died mid-write leaves `.tmp-<name>` (on a shared disk no start-up
    sweep sees it): retention removes it once nothing was written to it for the grace."""
    _result_folder(tmp_path, "done", age_hours=0, size=100)
    left = tmp_path / ".tmp-20260101T000000Z_x"
    left.mkdir()
    (left / "overlay.png").write_bytes(b"x")
    jobs = tmp_path / ".jobs"  # other hidden folders are not results
    jobs.mkdir()
    storage = LocalStorage(tmp_path)
    fresh = enforce_retention(storage, ttl_hours=None, max_bytes=None, incomplete_grace_s=600)
    assert fresh.incomplete_removed == 0 and left.exists()
    idle = enforce_retention(storage, ttl_hours=None, max_bytes=None, now=time.time() + 601,
                             incomplete_grace_s=600)
    assert idle.incomplete_removed == 1 and sorted(p.name for p in tmp_path.iterdir()) == [
        ".jobs", "done"]


def test_a_folder_that_cannot_be_deleted_is_not_counted_as_removed(tmp_path, monkeypatch):
    for age, name in enumerate(["newest", "stuck", "oldest"]):
        _result_folder(tmp_path, name, age_hours=age * 30, size=100)
    real_rmtree = local.shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if path.name == "stuck":
            raise PermissionError(13, "Permission denied", str(path))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(local.shutil, "rmtree", rmtree)
    report = enforce_retention(LocalStorage(tmp_path), ttl_hours=24, max_bytes=None)
    assert report.removed == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["newest", "stuck"]
