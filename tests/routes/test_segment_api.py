"""POST /segment against a real uvicorn running the real generator on sam_tiny."""

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import PERMISSIVE
from tests.images import image_bytes


def upload(api, server, data: bytes, name: str = "upload.bin", mime: str = "application/octet-stream",
           **fields: str):
    multipart = {"image": {"name": name, "mimeType": mime, "buffer": data}, **fields}
    return api.post(server.url + "/segment", multipart=multipart)


def result_folder(server, body: dict) -> Path:
    return server.results_dir / Path(body["output_dir"]).name


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_image_upload_writes_every_listed_file(api, server, fmt):
    response = upload(api, server, image_bytes(fmt), **PERMISSIVE)
    assert response.status == 200, response.text()
    body = response.json()
    assert body["success"] is True and body["objects_count"] >= 1
    assert body["output_dir"].startswith("results/upload_")  # the folder starts with the upload's stem
    files = body["files"]
    listed = [files["overlay"], files["metadata"], *files["masks"], *files["objects"]]
    assert len(files["masks"]) == len(files["objects"]) == body["objects_count"]
    for relative in listed:
        path = server.results_dir.parent / relative
        assert path.is_file() and path.stat().st_size > 0, relative


def test_masks_are_binary_and_each_cutout_alpha_equals_its_mask(api, server):
    body = upload(api, server, image_bytes("PNG"), **PERMISSIVE).json()
    metadata = json.loads((server.results_dir.parent / body["files"]["metadata"]).read_text())
    for entry in metadata["objects"]:
        folder = result_folder(server, body)
        mask = np.asarray(Image.open(folder / entry["mask_file"]))
        cutout = np.asarray(Image.open(folder / entry["object_file"]))
        assert mask.shape == (120, 160) and set(np.unique(mask)) <= {0, 255}
        x, y, w, h = entry["bbox"]
        assert cutout.shape == (h, w, 4)
        np.testing.assert_array_equal(cutout[..., 3], mask[y:y + h, x:x + w])
        assert int((mask > 0).sum()) == entry["area"]


def test_objects_are_sorted_largest_first(api, server):
    body = upload(api, server, image_bytes("PNG"), **PERMISSIVE).json()
    metadata = json.loads((server.results_dir.parent / body["files"]["metadata"]).read_text())
    areas = [o["area"] for o in metadata["objects"]]
    assert areas == sorted(areas, reverse=True)
    assert set(metadata["timings_ms"]) == {"received", "preprocessed", "model_loaded",
                                           "masks_generated", "objects_saved", "completed"}


def test_non_image_upload_returns_invalid_image(api, server):
    response = upload(api, server, b"%PDF-1.4 definitely not an image", name="photo.png",
                      mime="image/png")
    assert response.status == 400
    body = response.json()
    assert body == {"success": False, "error_code": "INVALID_IMAGE",
                    "message": body["message"], "details": {"reason": "not_an_image"}}


def test_out_of_range_parameter_returns_invalid_request(api, server):
    response = upload(api, server, image_bytes(), points_per_side="0")
    assert response.status == 422
    body = response.json()
    assert body["error_code"] == "INVALID_REQUEST" and body["success"] is False
    assert body["details"]["errors"][0]["field"] == "points_per_side"


def test_missing_image_field_returns_invalid_request(api, server):
    response = api.post(server.url + "/segment", multipart={"points_per_side": "8"})
    assert response.status == 422
    assert response.json()["details"]["errors"][0]["field"] == "image"


def test_failed_requests_leave_no_folder_behind(api, server):
    before = set(server.results_dir.iterdir()) if server.results_dir.exists() else set()
    upload(api, server, b"\x89PNG\r\n\x1a\n truncated", **PERMISSIVE)
    after = set(server.results_dir.iterdir()) if server.results_dir.exists() else set()
    assert after == before


def test_simulated_cuda_oom_is_recovered_and_recorded(api, start_server):
    server = start_server(SIMULATE_CUDA_OOM="1")
    response = upload(api, server, image_bytes(), **PERMISSIVE)
    assert response.status == 200, response.text()
    metadata = json.loads((server.results_dir.parent / response.json()["files"]["metadata"]).read_text())
    assert [r["reason"] for r in metadata["retries"]] == ["cuda_out_of_memory"]
    assert '"generation_retry"' in server.log()


def test_health_answers_while_a_segmentation_runs(api, server):
    slow = {**PERMISSIVE, "points_per_side": "48"}
    finished = threading.Event()

    def segment_slowly():  # its own client: Playwright's sync API is single-threaded
        requests.post(server.url + "/segment", data=slow, timeout=120,
                      files={"image": ("big.png", image_bytes(width=320, height=240))})
        finished.set()

    worker = threading.Thread(target=segment_slowly)
    worker.start()
    time.sleep(0.5)  # let the upload reach the generator
    health = api.get(server.url + "/health", timeout=5_000)
    answered_during_generation = not finished.is_set()
    worker.join(timeout=120)
    assert health.status == 200
    assert answered_during_generation, "the segmentation ended before /health was asked"


def test_info_lists_exactly_one_segmentation_endpoint(api, server):
    info = api.get(server.url + "/info").json()
    assert info["model"] == "sam_tiny" and info["device"] == "cpu"
    # PRECISION is left at auto: the answer names the setting and the rule that applied.
    assert info["precision_reason"].startswith("PRECISION=auto; ")
    assert (info["precision"] == "exact") == (info["precision_fallback_reason"] is not None)
    segmentation = [e for e in info["endpoints"] if "segment" in e]
    assert segmentation == ["POST /segment"]
    openapi = api.get(server.url + "/openapi.json").json()
    assert [p for p in openapi["paths"] if "segment" in p] == ["/segment"]


def test_response_timings_and_parameters_are_exactly_those_in_metadata_json(api, server):
    body = upload(api, server, image_bytes("PNG"), **PERMISSIVE).json()
    metadata = json.loads((server.results_dir.parent / body["files"]["metadata"]).read_text())
    assert body["timings"] == metadata["timings_ms"]
    assert body["parameters"] == metadata["parameters"]


@pytest.mark.parametrize("field", ["points_per_batch", "pred_iou_tresh"])
def test_an_unknown_form_field_is_refused_not_ignored(api, server, field):
    response = upload(api, server, image_bytes(), **{field: "32"})
    assert response.status == 422
    body = response.json()
    assert body["error_code"] == "INVALID_REQUEST"
    assert [e["field"] for e in body["details"]["errors"]] == [field]
