"""RESULTS_DIR=s3://bucket/prefix against a real uvicorn and moto's S3 server."""

import io
import zipfile

import requests

from tests.images import image_bytes
from tests.job_client import submit, wait_for
from tests.reliability.helpers import assert_envelope, post_image


def test_segment_writes_to_the_bucket_and_results_stream_from_it(start_server, s3):
    server = start_server(RESULTS_DIR=f"s3://{s3.BUCKET}/team")
    assert requests.get(server.url + "/health/ready", timeout=10).json()["results_writable"] is True
    response = post_image(server.url, image_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    folder = f"s3://{s3.BUCKET}/team/" + body["output_dir"].rsplit("/", 1)[1]
    assert body["output_dir"] == folder and body["files"]["metadata"] == folder + "/metadata.json"
    assert body["urls"]["metadata"] == f"/results/{body['job_id']}/metadata.json"
    index_key = f"team/.index/{body['job_id']}"  # its lookup by id
    assert index_key in s3.keys()
    keys = [k for k in s3.keys() if k != index_key]
    assert keys and all(k.startswith("team/" + folder.rsplit("/", 1)[1] + "/") for k in keys)
    assert len(keys) == 3 + 2 * body["objects_count"]
    metadata = requests.get(server.url + body["urls"]["metadata"], timeout=10)
    assert metadata.status_code == 200 and metadata.json()["job_id"] == body["job_id"]
    overlay = requests.get(server.url + body["urls"]["overlay"], timeout=10)
    assert overlay.headers["content-type"] == "image/png" and overlay.content[:4] == b"\x89PNG"
    archive = zipfile.ZipFile(io.BytesIO(requests.get(server.url + body["urls"]["archive"],
                                                      timeout=30).content))
    assert len(archive.namelist()) == len(keys)
    assert_envelope(requests.get(f"{server.url}/results/{body['job_id']}/mask_999.png", timeout=10),
                    404, "NOT_FOUND")


def test_store_gone_mid_job_fails_with_storage_unavailable_and_leaves_nothing(start_server, s3):
    server = start_server(RESULTS_DIR=f"s3://{s3.BUCKET}/team")
    job_id = submit(server.url, image_bytes("PNG", 320, 240), points_per_side="40").json()["job_id"]
    wait_for(server.url, job_id, {"running"}, timeout=30)
    s3.stop()
    state = wait_for(server.url, job_id, timeout=120)
    assert state["status"] == "failed", state
    assert state["error"]["error_code"] == "STORAGE_UNAVAILABLE"
    assert s3.endpoint.removeprefix("http://") not in str(state["error"])  # only in the log
    ready = requests.get(server.url + "/health/ready", timeout=30)
    assert_envelope(ready, 503, "NOT_READY")
    s3.start()
    s3.create_bucket()
    assert_envelope(requests.get(f"{server.url}/results/{job_id}/metadata.json", timeout=10),
                    404, "NOT_FOUND")
