"""A results bucket that hangs (accepts connections, never answers): the service
answers in seconds with the documented codes, and never names the store's endpoint."""

import time
import uuid

import requests

from tests.hanging_store import hanging_store  # noqa: F401 - the fixture
from tests.reliability.helpers import assert_envelope

BOUNDS = {"STORAGE_CONNECT_TIMEOUT_S": "1", "STORAGE_READ_TIMEOUT_S": "1", "STORAGE_ATTEMPTS": "1"}


def test_a_hanging_store_reads_not_ready_and_unavailable_in_seconds(
        start_server, redis_server, hanging_store):  # noqa: F811 - the fixture
    # A broker-mode front: it loads no model, so it starts in a few seconds.
    server = start_server(RESULTS_DIR="s3://sam-results/team", BROKER_URL=redis_server.url,
                          **hanging_store.env, **BOUNDS)
    began = time.monotonic()
    ready = requests.get(server.url + "/health/ready", timeout=30)
    ready = assert_envelope(ready, 503, "NOT_READY")
    assert time.monotonic() - began < 2
    assert ready["details"]["results_writable"] is False
    began = time.monotonic()
    download = requests.get(f"{server.url}/results/{uuid.uuid4()}/metadata.json", timeout=30)
    body = assert_envelope(download, 503, "STORAGE_UNAVAILABLE")
    assert time.monotonic() - began < 4 and int(download.headers["Retry-After"]) >= 1
    endpoint = hanging_store.endpoint.removeprefix("http://")
    for answer in (ready, body):
        assert endpoint not in str(answer) and "127.0.0.1" not in str(answer), answer
    assert endpoint in server.log()  # ...but the server's log says where it failed
