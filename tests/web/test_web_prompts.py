"""Pointing at an object on the web page, in a real Chromium, with the shipped sam_tiny."""

import io
import numpy as np
import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

from sam_tiny.scenes import generate_scene
from tests.images import encode
from tests.job_client import wait_for
from tests.services.engine.test_prompted import HELD_OUT_SEED, interior_point, iou
from tests.web.test_web_page import IMAGES_LOADED, SLOW, choose_image


@pytest.fixture
def trained(start_server):
    return start_server(SAM_CHECKPOINT_PATH="")  # empty = unset: the bundled weights load


def click_image_at(page, x: float, y: float, **options) -> None:
    """Click the pixel (x, y) of the image shown for pointing."""
    size = page.eval_on_selector("#prompt-image", "i => [i.naturalWidth, i.naturalHeight]")
    box = page.locator("#prompt-marks").bounding_box()
    position = {"x": (x + 0.5) * box["width"] / size[0], "y": (y + 0.5) * box["height"] / size[1]}
    page.locator("#prompt-marks").click(position=position, **options)


def finished_job(page, server, button: str) -> dict:
    """Click `button`, which submits a job (POST /jobs), and return the finished job's answer."""
    with page.expect_response(lambda r: r.url.endswith("/jobs"), timeout=SLOW) as accepted:
        page.click(button)
    assert accepted.value.status == 202
    state = wait_for(server.url, accepted.value.json()["job_id"], timeout=SLOW / 1000)
    assert state["status"] == "succeeded"
    expect(page.locator("#submit")).to_be_enabled(timeout=SLOW)  # the page has shown it
    return state["result"]


def test_clicking_an_object_and_cut_out_shows_that_object(page, trained):
    image, masks = generate_scene(np.random.default_rng(HELD_OUT_SEED + 10))
    target = masks[1]
    page.goto(trained.url)
    choose_image(page, "scene.png", encode(image))
    expect(page.locator("#prompt-area")).to_be_visible()
    expect(page.locator("#cut-out")).to_be_disabled()
    click_image_at(page, 5, 5)  # a stray click, undone
    click_image_at(page, 6, 6, modifiers=["Shift"])
    expect(page.locator("#prompt-marks .mark.negative")).to_have_count(1)
    page.click("#clear-marks")
    expect(page.locator("#prompt-marks .mark")).to_have_count(0)
    click_image_at(page, *interior_point(target))
    click_image_at(page, 3, 3)
    page.click("#undo-mark")
    expect(page.locator("#prompt-marks .mark.positive")).to_have_count(1)
    rule = requests.get(trained.url + "/info").json()["marks_rule"]
    expect(page.locator("#prompt-count")).to_have_text(f"1 mark. {rule}")  # the server's rule, as it states it

    body = finished_job(page, trained, "#cut-out")
    assert body["objects_count"] == 1
    expect(page.locator("#gallery .card")).to_have_count(1, timeout=SLOW)
    page.wait_for_function(IMAGES_LOADED)
    shown = page.eval_on_selector("#gallery .card img", "i => i.src")
    assert shown.startswith("blob:")
    mask = Image.open(io.BytesIO(requests.get(trained.url + body["urls"]["masks"][0]).content))
    assert iou(np.asarray(mask) > 0, target) >= 0.8
    metadata = requests.get(trained.url + body["urls"]["metadata"]).json()
    (obj,) = metadata["objects"]
    x, y = interior_point(target)
    (px, py), = obj["prompt"]["points"]
    assert abs(px - x) <= 1 and abs(py - y) <= 1 and obj["prompt"]["labels"] == [1]


def test_drag_draws_a_box_and_segment_everything_still_works(page, trained):
    image, _ = generate_scene(np.random.default_rng(HELD_OUT_SEED + 11))
    page.goto(trained.url)
    choose_image(page, "scene.png", encode(image))
    stage = page.locator("#prompt-marks").bounding_box()
    page.mouse.move(stage["x"] + 10, stage["y"] + 10)
    page.mouse.down()
    page.mouse.move(stage["x"] + 80, stage["y"] + 60, steps=4)
    page.mouse.up()
    expect(page.locator("#prompt-marks rect.box")).to_have_count(1)
    body = finished_job(page, trained, "#cut-out")
    metadata = requests.get(trained.url + body["urls"]["metadata"]).json()
    # sam_tiny was never trained on boxes: only the mechanics are checked (one prompt, a box)
    (answered,) = metadata["objects"] + metadata["skipped"]
    assert answered["prompt_index"] == 0
    if metadata["objects"]:
        box = metadata["objects"][0]["prompt"]["box"]
        assert box[2] > box[0] and box[3] > box[1] and metadata["objects"][0]["prompt"]["points"] == []
    body = finished_job(page, trained, "#submit")
    metadata = requests.get(trained.url + body["urls"]["metadata"]).json()
    assert all(o["prompt"] is None for o in metadata["objects"])  # everything, as before
