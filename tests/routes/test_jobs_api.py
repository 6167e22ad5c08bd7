"""The async job API in embedded mode, against a real uvicorn running sam_tiny."""

import time

import requests

from tests.images import image_bytes
from tests.job_client import job, logged, submit, wait_for
from tests.reliability.helpers import assert_envelope, leftovers

SLOW = {"points_per_side": "40"}  # several seconds on sam_tiny with two cores


def test_job_is_accepted_then_succeeds_with_the_segment_answer(server):
    response = submit(server.url, image_bytes())
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["status_url"] == f"/jobs/{accepted['job_id']}"
    assert response.headers["Location"] == accepted["status_url"]
    state = wait_for(server.url, accepted["job_id"])
    assert state["status"] == "succeeded", state
    assert state["started_at"] and state["finished_at"] and state["worker"]
    assert state["progress"]["phase"] == "completed" and state["error"] is None
    result = state["result"]
    assert result["job_id"] == accepted["job_id"] and result["objects_count"] >= 1
    metadata = requests.get(server.url + result["urls"]["metadata"], timeout=10).json()
    assert metadata["worker"] == state["worker"]


def test_a_job_that_fails_reads_failed_with_the_usual_envelope(server):
    jpeg = image_bytes("JPEG", 640, 480)
    cut_short = jpeg[: len(jpeg) // 2]  # its header reads well: the data fails when decoded
    accepted = submit(server.url, cut_short).json()
    state = wait_for(server.url, accepted["job_id"])
    assert state["status"] == "failed" and state["result"] is None
    assert state["error"]["error_code"] == "INVALID_IMAGE" and state["error"]["success"] is False
    assert state["error"]["details"]["reason"] == "truncated"


def test_unknown_and_malformed_job_ids_answer_not_found(server):
    for job_id in ("3f2c6a1e-1b7a-4c55-9f7e-0d7c1c2a9b10", "nope", "..%2F.jobs"):
        assert_envelope(requests.get(f"{server.url}/jobs/{job_id}", timeout=5), 404, "NOT_FOUND")
        assert_envelope(requests.delete(f"{server.url}/jobs/{job_id}", timeout=5), 404, "NOT_FOUND")


def test_bad_input_is_refused_with_the_envelope_before_acceptance(server):
    assert_envelope(submit(server.url, image_bytes(), points_per_side="0"), 422, "INVALID_REQUEST")
    assert_envelope(submit(server.url, image_bytes(), colour="red"), 422, "INVALID_REQUEST")
    no_image = requests.post(server.url + "/jobs", data={"points_per_side": "8"}, timeout=10)
    assert_envelope(no_image, 422, "INVALID_REQUEST")
    for data, reason in [(b"", "empty"), (b"plain text", "not_an_image"),
                         (image_bytes("GIF"), "unsupported_format")]:
        body = assert_envelope(submit(server.url, data), 400, "INVALID_IMAGE")
        assert body["details"]["reason"] == reason
    twice = requests.post(server.url + "/jobs", timeout=10, files=[
        ("image", ("a.png", image_bytes())), ("image", ("b.png", image_bytes()))])
    error, = assert_envelope(twice, 422, "INVALID_REQUEST")["details"]["errors"]
    assert error == {"field": "image", "message": "sent more than once"}


def test_api_key_guards_the_job_api(start_server):
    guarded = start_server(API_KEY="secret")
    assert_envelope(submit(guarded.url, image_bytes()), 401, "UNAUTHORIZED")
    accepted = submit(guarded.url, image_bytes(), headers={"X-API-Key": "secret"}).json()
    assert_envelope(requests.get(f"{guarded.url}/jobs/{accepted['job_id']}", timeout=5), 401,
                    "UNAUTHORIZED")
    assert job(guarded.url, accepted["job_id"], headers={"X-API-Key": "secret"})["job_id"]


def test_cancel_a_queued_and_a_running_job(start_server):
    server = start_server(MAX_CONCURRENT_JOBS="1")
    running = submit(server.url, image_bytes("PNG", 320, 240), **SLOW).json()["job_id"]
    queued = submit(server.url, image_bytes(), **SLOW).json()["job_id"]
    wait_for(server.url, running, {"running"}, timeout=30)
    assert job(server.url, queued)["status"] == "queued"
    cancelled = requests.delete(f"{server.url}/jobs/{queued}", timeout=10).json()
    assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    assert requests.delete(f"{server.url}/jobs/{running}", timeout=10).json()["status"] == "cancelled"
    assert wait_for(server.url, running)["status"] == "cancelled"
    # The abandoned thread ends at its next batch, never finishing the job.
    _wait_idle(server)
    assert logged(server.log(), "abandoned_job_ended", running)
    assert not logged(server.log(), "completed", running)
    follow = submit(server.url, image_bytes()).json()["job_id"]
    assert wait_for(server.url, follow)["status"] == "succeeded"
    assert job(server.url, queued)["started_at"] is None
    folders = [p.name for p in server.results_dir.iterdir() if not p.name.startswith(".")]
    assert folders == [job(server.url, follow)["result"]["output_dir"].split("/")[-1]]
    assert leftovers(server.results_dir) == []


def _wait_idle(server, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while requests.get(server.url + "/health/ready", timeout=5).json()["jobs_running"]:
        assert time.monotonic() < deadline, "a job still runs"
        time.sleep(0.1)


def test_jobs_interrupted_by_a_crash_read_failed_interrupted_after_restart(start_server):
    server = start_server()
    running = submit(server.url, image_bytes("PNG", 320, 240), **SLOW).json()["job_id"]
    wait_for(server.url, running, {"running"}, timeout=30)
    server.process.kill()  # no graceful shutdown at all
    server.process.wait(10)
    again = start_server()
    state = job(again.url, running)
    assert state["status"] == "failed" and state["finished_at"]
    assert state["error"]["error_code"] == "JOB_INTERRUPTED"
    assert state["error"]["details"] == {"reason": "interrupted"}
    assert leftovers(again.results_dir) == []


def test_a_full_queue_refuses_jobs_with_retry_after(start_server):
    server = start_server(MAX_CONCURRENT_JOBS="1", MAX_QUEUED_JOBS="0")
    first = submit(server.url, image_bytes("PNG", 320, 240), **SLOW).json()["job_id"]
    wait_for(server.url, first, {"running"}, timeout=30)
    refused = submit(server.url, image_bytes())
    body = assert_envelope(refused, 503, "SERVER_BUSY")
    assert int(refused.headers["Retry-After"]) >= 1 and body["details"]["retry_after_s"] >= 1
    requests.delete(f"{server.url}/jobs/{first}", timeout=10)
