"""The web page at /, in a real headless Chromium against the real server.

Set WEB_SCREENSHOT=docs/web-page.png to also save the result page's screenshot there.
"""

import os
import re
import shutil
import threading
import time

import numpy as np
import pytest
import requests
from playwright.sync_api import expect

from sam_tiny.scenes import generate_scene
from tests.conftest import PERMISSIVE
from tests.images import encode

SLOW = 180_000  # ms: a generation on a busy 2-core machine
IMAGES_LOADED = "[...document.images].filter(i => i.src).every(i => i.complete && i.naturalWidth > 0)"


def scene_png() -> bytes:
    image, _ = generate_scene(np.random.default_rng(7))
    return encode(image)


def choose_image(page, name: str, data: bytes, mime: str = "image/png") -> None:
    page.set_input_files("#image-input", files=[{"name": name, "mimeType": mime, "buffer": data}])


def fill_parameters(page, params: dict[str, str]) -> None:
    page.click("details.params summary")
    for name, value in params.items():
        page.fill(f"input[name={name}]", value)


@pytest.fixture
def scene_server(start_server):
    """The shipped sam_tiny (so the screenshot shows real objects) with the README's filters."""
    trained = start_server(SAM_CHECKPOINT_PATH="")  # empty = unset: the bundled weights load
    return trained, {"pred_iou_thresh": "0.5", "stability_score_thresh": "0.8"}


def test_upload_shows_the_overlay_and_one_cutout_card_per_object(page, scene_server, tmp_path):
    server, params = scene_server
    page.goto(server.url)
    expect(page.locator("h1")).to_have_text("Segment Anything")
    choose_image(page, "scene.png", scene_png())
    expect(page.locator("#preview")).to_be_visible()
    fill_parameters(page, params)

    with page.expect_response(lambda r: r.url.endswith("/jobs"), timeout=SLOW) as answer:
        page.click("#submit")
        expect(page.locator("body")).to_have_class(re.compile("busy"))
        expect(page.locator("#submit")).to_be_disabled()
    assert answer.value.status == 202
    status_url = answer.value.json()["status_url"]

    expect(page.locator("#results")).to_be_visible(timeout=SLOW)
    body = requests.get(server.url + status_url, timeout=10).json()["result"]
    assert body["objects_count"] >= 1
    expect(page.locator("#gallery .card")).to_have_count(body["objects_count"])
    expect(page.locator("#objects-count")).to_have_text(str(body["objects_count"]))
    page.wait_for_function(IMAGES_LOADED)
    expect(page.locator("#submit")).to_be_enabled()
    first = page.locator("#gallery .card").first
    expect(first.locator(".area")).to_have_text(re.compile(r"^[\d,]+ px$"))
    expect(first.locator(".download")).to_have_attribute("download", "object_0.png")
    expect(page.locator("#error")).to_be_hidden()

    screenshot = tmp_path / "web-page.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("WEB_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["WEB_SCREENSHOT"])


def test_too_large_upload_says_so_with_the_limit(page, start_server):
    server = start_server(MAX_IMAGE_SIZE_MB="0.02")
    page.goto(server.url)
    choose_image(page, "scene.png", scene_png())  # about 41 KB
    page.click("#submit")
    expect(page.locator("#error-title")).to_have_text("This image is too large", timeout=SLOW)
    expect(page.locator("#error-text")).to_contain_text("20 KB")


def test_api_key_is_asked_for_then_sent_with_every_request(page, start_server):
    server = start_server(API_KEY="s3cret")
    page.goto(server.url)
    choose_image(page, "scene.png", scene_png())
    fill_parameters(page, PERMISSIVE)
    page.click("#submit")
    expect(page.locator("#error-title")).to_have_text("This server needs an API key", timeout=SLOW)
    page.fill("#api-key", "s3cret")
    page.click("#submit")
    expect(page.locator("#results")).to_be_visible(timeout=SLOW)
    expect(page.locator("#error")).to_be_hidden()
    page.wait_for_function(IMAGES_LOADED)
    assert page.locator("#gallery .card").count() == int(page.inner_text("#objects-count")) >= 1


def test_busy_server_says_so_and_when_to_retry(page, start_server):
    server = start_server(MAX_CONCURRENT_JOBS="1", MAX_QUEUED_JOBS="0")
    slow = {**PERMISSIVE, "points_per_side": "32"}

    def occupy_the_only_slot():  # its own client: Playwright's sync API is single-threaded
        try:
            requests.post(server.url + "/segment", data=slow, files={"image": ("s.png", scene_png())},
                          timeout=300)
        except requests.RequestException:
            pass  # the server may be stopped under it at teardown

    worker = threading.Thread(target=occupy_the_only_slot)
    worker.start()
    deadline = time.monotonic() + 60
    while "segmentation_jobs_running 1.0" not in requests.get(server.url + "/metrics").text:
        assert time.monotonic() < deadline, "the slow job never started"
        time.sleep(0.1)
    page.goto(server.url)
    choose_image(page, "scene.png", scene_png())
    page.click("#submit")
    expect(page.locator("#error-title")).to_have_text("The server is busy", timeout=SLOW)
    expect(page.locator("#error-text")).to_contain_text(re.compile(r"Try again in about \d+ s"))
    worker.join(timeout=300)


def test_progress_bar_shows_the_phase_and_the_batches_done(page, server):
    page.goto(server.url)
    choose_image(page, "scene.png", scene_png())
    fill_parameters(page, {**PERMISSIVE, "points_per_side": "48"})
    page.evaluate(ANNOUNCEMENTS)
    page.click("#submit")
    expect(page.locator("#job-progress")).to_be_visible(timeout=SLOW)
    expect(page.locator("#job-progress")).to_have_accessible_name("Segmentation progress")
    expect(page.locator("#job-phase")).to_contain_text(
        re.compile(r"Generating masks · \d+% of point batches done"), timeout=SLOW)
    value = float(page.locator("#job-progress").evaluate("bar => bar.value"))
    assert 0.1 <= value <= 0.95
    expect(page.locator("#results")).to_be_visible(timeout=SLOW)
    expect(page.locator("#job-progress")).to_be_hidden()
    # A screen reader hears each phase once and the outcome, not every tick and poll.
    heard = page.evaluate("window.heard")
    assert heard[0] == "Segmenting…" and heard[-1].startswith("Done: ")
    assert "Generating masks" in heard and len(heard) == len(set(heard)) <= 9, heard
    assert page.locator("[aria-live], [role=status], [role=alert]").count() == 2  # #status, #error


def test_a_job_requeued_after_its_worker_was_lost_says_so(page, server):
    # The state GET /jobs/{id} reads after a worker is lost (tests/scale make it for real).
    page.goto(server.url)
    page.evaluate("showJobProgress({status: 'requeued', attempt: 2, progress: {}})")
    expect(page.locator("#job-phase")).to_have_text("Its worker was lost: queued again (attempt 2)")
    expect(page.locator("#status")).to_have_text("Its worker was lost: queued again")


# Every text a live region (role=status) takes, in order, collected in window.heard.
ANNOUNCEMENTS = """() => {
  window.heard = [];
  for (const region of document.querySelectorAll("[role=status], [aria-live]")) {
    new MutationObserver(() => window.heard.push(region.textContent))
      .observe(region, { childList: true, characterData: true, subtree: true });
  }
}"""
