"""End to end with the shipped sam_tiny weights: a real server, offline, no checkpoint setting.

At the generator's DEFAULT filters the weights find few of the drawn objects (10.5 % on 60
scenes in docs/sam_tiny.md; the issue's 90 % target is not met), but what they return is
right: every mask is a drawn object. With the README's relaxed filters they find most objects. Every
cut-out holds exactly the uploaded pixels of its mask.
"""

import json

import numpy as np
import pytest
from PIL import Image

from bench.mask_agreement import iou_matrix
from sam_tiny.scenes import generate_scene
from tests.conftest import LiveServer
from tests.images import encode

SCENE_SEED = 40_000  # not drawn by training (seeds 0, 1, check 1_000_003) nor eval (20_000)
SCENES = 8
RELAXED = {"pred_iou_thresh": "0.5", "stability_score_thresh": "0.8"}  # the README's
MIN_RELAXED_RECOVERED = 0.5  # measured 0.69 on 20 other held-out scenes


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    """No checkpoint setting, no network: the bundled weights must be found by themselves."""
    workdir = tmp_path_factory.mktemp("bundled")
    live = LiveServer(workdir, {"DEFAULT_MODEL": "sam_tiny", "OFFLINE": "1",
                                "RESULTS_DIR": str(workdir / "results")})
    live.wait_ready()
    yield live
    live.stop()


def segment_scenes(api, server, **fields):
    """(image, drawn objects, returned objects as (mask, cut-out, bbox)) per scene."""
    rng = np.random.default_rng(SCENE_SEED)
    results = []
    for index in range(SCENES):
        image, drawn = generate_scene(rng)
        response = api.post(server.url + "/segment", multipart={
            "image": {"name": f"scene{index}.png", "mimeType": "image/png",
                      "buffer": encode(image)}, **fields})
        assert response.status == 200, response.text()
        results.append((image, drawn, _returned_objects(server, response.json())))
    return results


def _returned_objects(server, body):
    folder = server.results_dir.parent / body["output_dir"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["model_type"] == "sam_tiny"
    found = []
    for entry in metadata["objects"]:
        mask = np.asarray(Image.open(folder / entry["mask_file"])) > 0
        cutout = np.asarray(Image.open(folder / entry["object_file"]))
        found.append((mask, cutout, entry["bbox"]))
    return found


def best_iou_per_drawn_object(results):
    best = []
    for _, drawn, found in results:
        ious = iou_matrix(drawn, [mask for mask, _, _ in found])
        best.extend(ious.max(axis=1) if found else np.zeros(len(drawn)))
    return np.array(best)


@pytest.fixture(scope="module")
def at_defaults(api, offline_server):
    return segment_scenes(api, offline_server)


@pytest.fixture(scope="module")
def relaxed(api, offline_server):
    return segment_scenes(api, offline_server, **RELAXED)


def test_at_default_filters_every_returned_mask_is_a_drawn_object(at_defaults):
    returned = [(drawn, mask) for _, drawn, found in at_defaults for mask, _, _ in found]
    assert returned, "the default generator found nothing in any scene"
    for drawn, mask in returned:
        assert iou_matrix(drawn, [mask]).max() >= 0.8


def test_with_relaxed_filters_most_drawn_objects_are_recovered(relaxed):
    best = best_iou_per_drawn_object(relaxed)
    assert np.mean(best >= 0.8) >= MIN_RELAXED_RECOVERED, np.round(best, 2)


def test_each_cutout_holds_exactly_the_pixels_of_its_object(relaxed):
    matched = 0
    for image, drawn, found in relaxed:
        for mask, cutout, (x, y, w, h) in found:
            inside = mask[y:y + h, x:x + w]
            np.testing.assert_array_equal(cutout[..., 3] > 0, inside)
            np.testing.assert_array_equal(cutout[..., :3][inside], image[y:y + h, x:x + w][inside])
            assert not cutout[..., :3][~inside].any()  # nothing else of the scene
            matched += iou_matrix(drawn, [mask]).max() >= 0.8
    assert matched > 0  # the checks above ran on cut-outs of real drawn objects
