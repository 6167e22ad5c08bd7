"""A small client of the async job API for tests: submit, poll, wait."""

import json
import time

import requests

from tests.conftest import PERMISSIVE

FINAL = {"succeeded", "failed", "cancelled"}


def submit(url: str, data: bytes, headers: dict | None = None, **fields: str) -> requests.Response:
    """POST /jobs with the permissive generator parameters (none with `prompts`:
    they tune the point grid, and are refused next to prompts)."""
    defaults = {"min_object_pixels": PERMISSIVE["min_object_pixels"]} if "prompts" in fields \
        else PERMISSIVE
    return requests.post(url + "/jobs", files={"image": ("upload.png", data)},
                         data={**defaults, **fields}, timeout=30, headers=headers)


def job(url: str, job_id: str, headers: dict | None = None) -> dict:
    response = requests.get(f"{url}/jobs/{job_id}", timeout=10, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(url: str, job_id: str, statuses=FINAL, timeout: float = 120) -> dict:
    """Poll until the job's status is one of `statuses` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = job(url, job_id)
        if state["status"] in statuses:
            return state
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {state['status']} after {timeout}s: {state}")


def eventually(condition, timeout_s: float = 30) -> None:
    """Poll `condition` until it holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def logged(log: str, event: str, job_id: str) -> bool:
    """Whether a JSON log holds `event` for the job."""
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return any(e.get("event") == event and e.get("job_id") == job_id for e in lines)
