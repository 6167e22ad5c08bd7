"""SAM 2.1 end to end: a real uvicorn with DEFAULT_MODEL=sam2.1_hiera_tiny, OFFLINE=1,
PRECISION=exact and a seeded random checkpoint of the real hiera-tiny architecture in
Meta's published format, serving POST /segment and POST /jobs, automatic and prompted."""

import json

import pytest
import requests

from tests.conftest import LiveServer
from tests.images import image_bytes
from tests.job_client import submit, wait_for
from tests.reliability.helpers import assert_envelope

pytest.importorskip("sam2", reason="the test-only oracle writes the Meta-format checkpoint")
from tests.sam2_oracle import make_meta_checkpoint  # noqa: E402

FEW_POINTS = {"points_per_side": "2", "pred_iou_thresh": "0", "stability_score_thresh": "0",
              "min_object_pixels": "0"}


@pytest.fixture(scope="module")
def sam2_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sam2_server")
    checkpoint = make_meta_checkpoint(workdir / "sam2.1_hiera_tiny.pt", seed=1)
    live = LiveServer(workdir, {"DEFAULT_MODEL": "sam2.1_hiera_tiny", "OFFLINE": "1",
                                "PRECISION": "exact", "SAM_CHECKPOINT_PATH": str(checkpoint),
                                "WARM_UP_AT_STARTUP": "0", "COMPILE_MODEL": "off",
                                "DECODE_BATCH_SIZE": "4",  # 4 grid points, 2 prompts: 1 batch
                                "RESULTS_DIR": str(workdir / "results")})
    live.wait_ready(timeout=180)
    yield live
    live.stop()


def _segment(server, **fields):
    return requests.post(server.url + "/segment", files={"image": ("scene.png", image_bytes())},
                         data=fields, timeout=300)


def test_info_names_the_family_and_every_registered_model(sam2_server):
    info = requests.get(sam2_server.url + "/info", timeout=10).json()
    assert info["model"] == "sam2.1_hiera_tiny" and info["family"] == "sam2.1"
    assert {"vit_b", "sam_tiny", "sam2.1_hiera_tiny", "sam2.1_hiera_large"} <= set(info["models"])
    assert info["parameters"]["pred_iou_thresh"] == 0.8 and info["parameters"]["use_m2m"] is False


def test_automatic_segment_records_sam2_parameters_and_defaults(sam2_server):
    response = _segment(sam2_server, **FEW_POINTS, use_m2m="false")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objects_count"] >= 1
    applied = body["parameters"]
    assert applied["points_per_side"] == 2 and applied["use_m2m"] is False
    assert applied["mask_threshold"] == 0.0 and applied["multimask_output"] is True
    metadata = requests.get(sam2_server.url + body["urls"]["metadata"], timeout=10).json()
    assert metadata["model_type"] == "sam2.1_hiera_tiny" and metadata["precision"] == "exact"


def test_prompted_job_gives_one_object_per_prompt(sam2_server):
    # POST /jobs and prompts at once: each request re-encodes the 1024-px image.
    prompts = [{"points": [[40, 30]]}, {"points": [[60, 50]], "box": [20, 20, 120, 100]}]
    accepted = submit(sam2_server.url, image_bytes(), prompts=json.dumps(prompts))
    assert accepted.status_code == 202, accepted.text
    state = wait_for(sam2_server.url, accepted.json()["job_id"], timeout=300)
    assert state["status"] == "succeeded", state
    metadata = requests.get(sam2_server.url + state["result"]["urls"]["metadata"], timeout=10).json()
    answered = [o["prompt_index"] for o in metadata["objects"]]
    answered += [s["prompt_index"] for s in metadata["skipped"]]  # an empty random mask
    assert sorted(answered) == [0, 1] and metadata["model_type"] == "sam2.1_hiera_tiny"


def test_sam1_model_refuses_a_sam2_parameter_saying_so(server):
    body = assert_envelope(submit(server.url, image_bytes(), use_m2m="true"), 422, "INVALID_REQUEST")
    (error,) = body["details"]["errors"]
    assert error["field"] == "use_m2m" and "does not apply to sam_tiny" in error["message"]
