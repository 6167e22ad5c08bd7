"""A person's first minutes with the web page, in a real Chromium at desktop and phone
size: the form built from the server's own rules, mistakes named by their labels, a new
file replacing the last one's image and result, a job that finds nothing, and the API
page the header links to, on a machine without internet."""

import io
import re
import struct
import zlib
from urllib.parse import urlsplit

import requests
from PIL import Image
from playwright.sync_api import expect

from tests.web.test_web_page import SLOW, choose_image, fill_parameters, scene_png
from tests.web.test_web_prompts import click_image_at

TEXT_FILE = ("notes.txt", b"not an image at all", "text/plain")


def test_fields_come_from_the_server_and_mistakes_name_their_label(page, server):
    schema = requests.get(server.url + "/openapi.json").json()["components"]["schemas"]["GenerationParams"]
    info = requests.get(server.url + "/info").json()
    defaults = info["parameters"]  # the running family's fields only, with its defaults
    assert info["family"] == "sam1" and defaults["pred_iou_thresh"] == 0.88
    assert defaults["min_object_pixels"] == info["limits"]["min_object_pixels"]
    page.goto(server.url)
    page.click("details.params summary")
    fields = page.locator("#param-grid input[name]")
    expect(fields).to_have_count(len(defaults))
    for name in ("mask_threshold", "multimask_output", "use_m2m"):  # SAM 2.1's, not shown
        assert name in schema["properties"] and name not in defaults
        expect(page.locator(f"#param-grid input[name={name}]")).to_have_count(0)
    for name, default in defaults.items():
        field = page.locator(f"#param-grid input[name={name}]")
        assert float(field.get_attribute("placeholder")) == default
        expect(field).to_have_accessible_name(schema["properties"][name]["title"])
    expect(page.locator("#image-input")).to_have_attribute("accept", re.compile("image/tiff"))
    expect(page.locator("#file-name")).to_contain_text("20.0 MB")

    page.click("#submit")
    expect(page.locator("#error-title")).to_have_text("No image chosen")
    choose_image(page, "scene.png", scene_png())
    expect(page.locator("#error")).to_be_hidden()  # the pick answered it
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/jobs") else None)
    page.locator("input[name=pred_iou_thresh]").press_sequentially("high")  # letters stay visible
    page.click("#submit")
    expect(page.locator("#error-text")).to_have_text("Predicted IoU threshold: not a number")
    expect(page.locator("input[name=pred_iou_thresh]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name=pred_iou_thresh]")).to_be_focused()
    assert sent == []

    page.fill("input[name=pred_iou_thresh]", "")
    page.fill("input[name=points_per_side]", "0")
    page.click("#submit")  # out of range: the server's rule, told with the page's label
    expect(page.locator("#error-text")).to_contain_text("Points per side: ", timeout=SLOW)
    expect(page.locator("#error-text")).not_to_contain_text("points_per_side")
    expect(page.locator("input[name=points_per_side]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name=pred_iou_thresh]")).not_to_have_attribute("aria-invalid", "true")

    page.fill("input[name=points_per_side]", "16")  # valid, but not for a prompt: said, not ignored
    click_image_at(page, 40, 40)
    page.click("#cut-out")
    expect(page.locator("#error-text")).to_have_text(
        re.compile(r"^Points per side: tunes the automatic point grid"), timeout=SLOW)
    expect(page.locator("input[name=points_per_side]")).to_have_attribute("aria-invalid", "true")


def test_a_new_file_replaces_the_last_image_and_the_keyboard_shows_where_it_is(page, server):
    page.goto(server.url)
    for _ in range(3):  # the header's two links, then the file box
        page.keyboard.press("Tab")
    expect(page.locator("#image-input")).to_be_focused()
    outline = page.eval_on_selector("#dropzone", "d => getComputedStyle(d).outlineStyle")
    assert outline != "none"

    choose_image(page, "scene.png", scene_png())
    expect(page.locator("#prompt-area")).to_be_visible()
    name, data, mime = TEXT_FILE
    choose_image(page, name, data, mime)
    expect(page.locator("#file-name")).to_contain_text("notes.txt")
    expect(page.locator("#prompt-area")).to_be_hidden()  # the photo is no longer there to point at
    expect(page.locator("#preview")).to_be_hidden()
    page.click("#submit")
    expect(page.locator("#error-title")).to_have_text("This file is not an image the server can read",
                                                      timeout=SLOW)
    expect(page.locator("#error-text")).to_contain_text("PNG, JPEG, WEBP, BMP or TIFF")

    choose_image(page, "huge.png", png_claiming(10_000, 5_000))
    expect(page.locator("#error")).to_be_hidden()
    page.click("#submit")
    expect(page.locator("#error-title")).to_have_text("This image has too many pixels", timeout=SLOW)
    expect(page.locator("#error-text")).to_contain_text("10000 × 5000 (50 megapixels)")
    expect(page.locator("#error-text")).to_contain_text("up to 40 megapixels")


def test_on_a_phone_no_objects_says_why_and_offers_the_servers_relaxed_filters(phone, server):
    relaxed = requests.get(server.url + "/info").json()["relaxed_parameters"]
    phone.goto(server.url)
    choose_image(phone, "scene.png", scene_png())
    phone.click("#submit")  # the defaults: random sam_tiny weights keep nothing
    expect(phone.locator("#no-objects")).to_be_visible(timeout=SLOW)
    expect(phone.locator("#objects-count")).to_have_text("0")
    expect(phone.locator("#gallery-title")).to_be_hidden()
    expect(phone.locator("#no-objects")).to_contain_text("Predicted IoU threshold 0.88")
    expect(phone.locator("#relax")).to_contain_text(f"Predicted IoU threshold {relaxed['pred_iou_thresh']}")
    expect(phone.locator("#download-archive")).to_have_attribute("href", re.compile(r"/archive\.zip$"))
    phone.wait_for_function("document.getElementById('overlay').naturalWidth > 0")
    box, natural = phone.eval_on_selector(
        "#overlay", "i => [i.getBoundingClientRect(), [i.naturalWidth, i.naturalHeight]]")
    assert abs(box["height"] - box["width"] * natural[1] / natural[0]) <= 2  # no bands above, below

    with phone.expect_response(lambda r: r.url.endswith("/jobs"), timeout=SLOW) as accepted:
        phone.click("#relax")
    assert accepted.value.status == 202
    for name, value in relaxed.items():
        expect(phone.locator(f"input[name={name}]")).to_have_value(str(value))
    expect(phone.locator("#submit")).to_be_enabled(timeout=SLOW)
    expect(phone.locator("#results")).to_be_visible()
    name, data, mime = TEXT_FILE
    choose_image(phone, name, data, mime)
    expect(phone.locator("#results")).to_be_hidden()  # it was the last image's


def test_api_page_renders_with_no_request_to_another_host(page, server):
    elsewhere: list[str] = []

    def only_this_server(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith("data:"):
            route.continue_()
        else:  # what a machine without internet does to a CDN request
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SAM segmentation service")
    expect(page.locator(".opblock-summary-path", has_text="/segment").first).to_be_visible()
    assert elsewhere == []
    assert page.request.get(server.url + "/redoc").status == 404  # no second page, with a CDN logo


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header says width x height: the server refuses it from the header."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)
