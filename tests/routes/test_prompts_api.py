"""POST /segment with `prompts`, against a real uvicorn running the shipped sam_tiny."""

import json
import threading
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import PERMISSIVE, REPO, LiveServer
from tests.images import encode
from tests.services.engine.test_prompted import HELD_OUT_SEED, interior_point, iou
from sam_tiny.scenes import generate_scene


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory):
    """sam_tiny with its shipped trained weights; MAX_OBJECTS=4 to test the bound."""
    workdir = tmp_path_factory.mktemp("prompts")
    live = LiveServer(workdir, {"DEFAULT_MODEL": "sam_tiny", "MAX_OBJECTS": "4",
                                "SAM_CHECKPOINT_PATH": str(REPO / "app/weights/sam_tiny.pth"),
                                "RESULTS_DIR": str(workdir / "results")})
    live.wait_ready()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(HELD_OUT_SEED + 10)
    while True:  # a scene with at least three objects the weights find by one click
        image, masks = generate_scene(rng)
        if len(masks) >= 3:
            return image, masks


def post(server, image: bytes, prompts=None, **fields):
    data = dict(fields)
    if prompts is not None:
        data["prompts"] = prompts if isinstance(prompts, str) else json.dumps(prompts)
    return requests.post(server.url + "/segment", files={"image": ("scene.png", image)},
                         data=data, timeout=120)


def mask_file(server, body: dict, i: int) -> np.ndarray:
    path = server.results_dir.parent / body["files"]["masks"][i]
    return np.asarray(Image.open(path)) > 0


def test_several_point_prompts_return_one_object_each_in_order(trained_server, scene):
    image, masks = scene
    prompts = [{"points": [list(interior_point(m))]} for m in masks]
    response = post(trained_server, encode(image), prompts, min_object_pixels="0")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objects_count"] == len(masks)
    scores = [iou(mask_file(trained_server, body, i), m) for i, m in enumerate(masks)]
    assert np.mean(scores) >= 0.5, scores  # one click per object, in the order asked
    folder = trained_server.results_dir / Path(body["output_dir"]).name
    metadata = json.loads((folder / "metadata.json").read_text())
    assert [o["prompt_index"] for o in metadata["objects"]] == list(range(len(masks)))
    assert metadata["objects"][1]["prompt"] == {**prompts[1], "labels": [1], "box": None}
    assert (folder / "annotations.json").is_file() and (folder / "overlay.png").is_file()


def test_small_prompted_object_is_listed_as_skipped(trained_server, scene):
    image, masks = scene
    response = post(trained_server, encode(image), [{"points": [list(interior_point(masks[0]))]}],
                    min_object_pixels=str(image.shape[0] * image.shape[1]))
    assert response.status_code == 200, response.text
    folder = trained_server.results_dir / Path(response.json()["output_dir"]).name
    (skipped,) = json.loads((folder / "metadata.json").read_text())["skipped"]
    assert skipped["reason"] == "smaller_than_min_object_pixels" and skipped["prompt_index"] == 0


def test_box_prompt_runs(trained_server, scene):
    image, _ = scene
    response = post(trained_server, encode(image), [{"box": [10, 10, 200, 200]}],
                    min_object_pixels="0")
    assert response.status_code == 200, response.text


def test_prompts_use_the_image_size_after_exif_orientation(trained_server):
    pixels = np.zeros((60, 200, 3), np.uint8)  # stored 200 wide, 60 high
    buffer = BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: shown 60 wide, 200 high
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif)
    jpeg = buffer.getvalue()
    assert post(trained_server, jpeg, [{"points": [[30, 150]]}]).status_code == 200
    refused = post(trained_server, jpeg, [{"points": [[150, 30]]}])
    assert refused.status_code == 422 and "outside the 60x200" in refused.text


@pytest.mark.parametrize("prompts, index", [
    ("[{'points': [[1, 2]]}]", None),
    ([{"points": [[5, 5]]}, {"points": [[500, 5]]}], 1),
    ([{"box": [0, 0, 300, 50]}], 0),
    ([{"box": [50, 10, 40, 60]}], 0),
    ([{"points": [[5, 5], [6, 6]], "labels": [1]}], 0),
    ([{"points": [[5, 5]]}] * 5, None),  # MAX_OBJECTS is 4
])
def test_bad_prompt_is_refused_and_nothing_is_written(trained_server, scene, prompts, index):
    before = set(trained_server.results_dir.glob("*")) if trained_server.results_dir.exists() else set()
    response = post(trained_server, encode(scene[0]), prompts)
    assert response.status_code == 422, response.text
    body = response.json()
    (error,) = body["details"]["errors"]
    assert body["error_code"] == "INVALID_REQUEST" and error["field"] == "prompts"
    assert error.get("prompt_index") == index
    after = set(trained_server.results_dir.glob("*")) if trained_server.results_dir.exists() else set()
    assert after == before


def test_point_grid_parameters_are_refused_with_prompts(trained_server, scene):
    prompts = [{"points": [list(interior_point(scene[1][0]))]}]
    refused = post(trained_server, encode(scene[0]), prompts, points_per_side="16",
                   pred_iou_thresh="0.5")
    assert refused.status_code == 422, refused.text
    fields = [e["field"] for e in refused.json()["details"]["errors"]]
    assert fields == ["points_per_side", "pred_iou_thresh"]
    kept = post(trained_server, encode(scene[0]), prompts, min_object_pixels="0")
    assert kept.status_code == 200, kept.text  # what applies to prompts is accepted


def test_prompted_and_automatic_requests_run_side_by_side(trained_server, scene):
    image, masks = encode(scene[0]), scene[1]
    answers: dict[str, requests.Response] = {}
    prompt = [{"points": [list(interior_point(masks[0]))]}]
    calls = {"prompted": lambda: post(trained_server, image, prompt),
             "automatic": lambda: post(trained_server, image, **PERMISSIVE),
             "prompted_again": lambda: post(trained_server, image, prompt)}
    threads = [threading.Thread(target=lambda k=k: answers.__setitem__(k, calls[k]()))
               for k in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.status_code == 200 for r in answers.values()), {k: r.text for k, r in answers.items()}
    assert answers["prompted"].json()["objects_count"] == 1
    assert answers["automatic"].json()["objects_count"] >= 1
    folder = trained_server.results_dir / Path(answers["automatic"].json()["output_dir"]).name
    metadata = json.loads((folder / "metadata.json").read_text())
    assert all(o["prompt"] is None and o["prompt_index"] is None for o in metadata["objects"])


def test_marks_are_grouped_by_the_server_and_exclude_prompts(trained_server, scene):
    """The web page sends its clicks as `marks`; they cut out what the prompts they make do."""
    image, masks = encode(scene[0]), scene[1]
    marks = {"points": [list(interior_point(masks[0])), [1, 1, 0]]}
    by_marks = requests.post(trained_server.url + "/segment", files={"image": ("scene.png", image)},
                             data={"marks": json.dumps(marks), "min_object_pixels": "0"}, timeout=120)
    assert by_marks.status_code == 200, by_marks.text
    (obj,) = requests.get(trained_server.url + by_marks.json()["urls"]["metadata"]).json()["objects"]
    assert obj["prompt"]["points"] == [marks["points"][0], [1, 1]] and obj["prompt"]["labels"] == [1, 0]
    both = requests.post(trained_server.url + "/segment", files={"image": ("scene.png", image)},
                         data={"marks": json.dumps(marks), "prompts": '[{"points": [[1, 1]]}]'},
                         timeout=120)
    assert both.status_code == 422 and both.json()["details"]["errors"][0]["field"] == "marks"
