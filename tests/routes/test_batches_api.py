"""POST/GET/DELETE /batches on a real server (embedded, sam_tiny): the CLI's batch
engine as a background task, the same manifest, and a clear 4xx for bad input."""

import asyncio
import json
import time
import uuid

import pytest
import requests

from app.core.config import Settings
from app.core.errors import InvalidRequest
from app.schemas.batches import BatchRequest
from app.services.batches.service import BatchService
from tests.cli.test_cli import manifest_lines
from tests.conftest import PERMISSIVE_PARAMS
from tests.images import image_bytes

KEY = {"X-API-Key": "batch-key"}
PARAMS = PERMISSIVE_PARAMS.model_dump(exclude_defaults=True)


def wait_final(url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = requests.get(url, headers=KEY, timeout=5).json()
        if view["status"] != "running":
            return view
        time.sleep(0.2)
    raise TimeoutError(view)


def test_batch_over_http_runs_a_folder_resumes_and_cancels(tmp_path, start_server, s3):
    root = tmp_path / "inputs"
    (root / "photos" / "sub").mkdir(parents=True)
    for name in ("photos/a.png", "photos/sub/a.png", "photos/b.png"):
        (root / name).write_bytes(image_bytes())
    (root / "photos" / "bad.png").write_bytes(b"not an image")
    (tmp_path / "secret.png").write_bytes(image_bytes())
    (root / "photos" / "leak.png").symlink_to(tmp_path / "secret.png")  # out of the root: left out
    (root / "empty").mkdir()
    server = start_server(BATCH_INPUT_ROOT=str(root), BATCH_MAX_IN_FLIGHT="1", API_KEY="batch-key")
    body = {"input": "photos", "params": PARAMS}

    assert requests.post(server.url + "/batches", json=body, timeout=5).status_code == 401
    answer = requests.post(server.url + "/batches", json=body, headers=KEY, timeout=5)
    assert answer.status_code == 202 and answer.headers["Location"] == answer.json()["status_url"]
    done = wait_final(server.url + answer.json()["status_url"])

    assert done["status"] == "finished", done
    assert done["counts"] == {"total": 4, "queued": 0, "running": 0, "succeeded": 3, "failed": 1,
                              "skipped": 0, "cancelled": 0}
    lines = {line["input"]: line for line in manifest_lines(open(done["manifest"]).read())}
    assert lines["bad.png"]["error_code"] == "INVALID_IMAGE"
    succeeded = {name for name, line in lines.items() if line["status"] == "succeeded"}
    assert succeeded == {"a.png", "sub/a.png", "b.png"}
    assert done["manifest"].startswith(str(server.results_dir / ".batches"))

    again = requests.post(server.url + "/batches", json=body, headers=KEY, timeout=5).json()
    assert wait_final(server.url + again["status_url"])["counts"]["skipped"] == 3  # resumed

    forced = requests.post(server.url + "/batches", json={**body, "force": True}, headers=KEY,
                           timeout=5).json()
    twice = requests.post(server.url + "/batches", json={**body, "input": str(root / "photos") + "/"},
                          headers=KEY, timeout=5)  # the same folder, spelt another way
    assert twice.status_code == 422, twice.text
    assert twice.json()["details"]["reason"] == "already_running"
    assert twice.json()["details"]["batch_id"] == forced["batch_id"]
    cancelled = requests.delete(server.url + forced["status_url"], headers=KEY, timeout=5)
    assert cancelled.status_code == 200
    final = wait_final(server.url + forced["status_url"])
    assert final["status"] == "cancelled" and final["counts"]["cancelled"] >= 2, final
    assert final["counts"]["queued"] == final["counts"]["running"] == 0

    for request, reason in (({"input": "../outside"}, "outside_batch_input_root"),
                            ({"input": "/etc"}, "outside_batch_input_root"),
                            ({"input": "missing"}, "not_a_folder"),
                            ({"input": "empty"}, "no_images"),
                            ({"input": "s3://no-such-bucket/photos/"}, "no_such_bucket"),
                            ({"input": f"s3://{s3.BUCKET}/nothing/"}, "no_images")):
        refused = requests.post(server.url + "/batches", json=request, headers=KEY, timeout=10)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error_code"] == "INVALID_REQUEST"
        assert refused.json()["details"]["reason"] == reason
    misspelt = requests.post(server.url + "/batches", json={"input": "photos",
                             "params": {"points_per_sid": 8}}, headers=KEY, timeout=5)
    assert misspelt.status_code == 422 and "points_per_sid" in misspelt.text
    for raw in ("input=photos", "[]"):  # not JSON; JSON but not an object
        not_json = requests.post(server.url + "/batches", data=raw, headers={
            **KEY, "Content-Type": "application/json"}, timeout=5)
        assert not_json.status_code == 422, not_json.text
        assert [e["field"] for e in not_json.json()["details"]["errors"]] == ["body"]
    failed = [json.loads(line) for line in server.log().splitlines()
              if '"request_failed"' in line and '"/batches"' in line]
    assert failed[-1]["details"]["errors"][0]["field"] == "body"  # the operator sees it too
    unknown = requests.get(f"{server.url}/batches/{uuid.uuid4()}", headers=KEY, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "NOT_FOUND"


def test_server_side_folders_are_refused_without_batch_input_root():
    service = BatchService(Settings(BATCH_INPUT_ROOT=None), jobs=None)
    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(service.start(BatchRequest(input="photos")))
    assert refused.value.status == 422 and refused.value.details["reason"] == "no_batch_input_root"
