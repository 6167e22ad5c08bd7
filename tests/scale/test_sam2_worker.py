"""SAM 2.1 in broker mode: a `python -m app worker` with DEFAULT_MODEL=sam2.1_hiera_tiny
(a seeded random checkpoint of the real architecture, in Meta's format) runs a job the
front accepted with a SAM 2.1-only parameter."""

import pytest
import requests

from tests.images import image_bytes
from tests.job_client import submit, wait_for

pytest.importorskip("sam2", reason="the test-only oracle writes the Meta-format checkpoint")
from tests.sam2_oracle import make_meta_checkpoint  # noqa: E402


def test_a_sam2_worker_runs_a_job_with_sam2_parameters(cluster, tmp_path):
    env = {"DEFAULT_MODEL": "sam2.1_hiera_tiny", "OFFLINE": "1", "PRECISION": "exact",
           "SAM_CHECKPOINT_PATH": str(make_meta_checkpoint(tmp_path / "hiera_tiny.pt", seed=1)),
           "WARM_UP_AT_STARTUP": "0", "COMPILE_MODEL": "off", "DECODE_BATCH_SIZE": "4"}
    api = cluster.api(**env)
    cluster.worker(**env)
    accepted = submit(api.url, image_bytes(), points_per_side="2", pred_iou_thresh="0",
                      stability_score_thresh="0", min_object_pixels="0", use_m2m="true")
    assert accepted.status_code == 202, accepted.text
    state = wait_for(api.url, accepted.json()["job_id"], timeout=120)
    assert state["status"] == "succeeded", state["error"]
    metadata = requests.get(api.url + state["result"]["urls"]["metadata"], timeout=10).json()
    assert metadata["model_type"] == "sam2.1_hiera_tiny"
    assert metadata["worker"].endswith(f":{cluster.workers[0].pid}")
    assert metadata["parameters"]["use_m2m"] is True and metadata["objects"]
