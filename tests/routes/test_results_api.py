"""GET /results/{job_id}/...: downloads of a real job, and nothing but its files."""

import http.client
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from tests.conftest import PERMISSIVE
from tests.images import image_bytes


@pytest.fixture(scope="module")
def job(api, server) -> dict:
    """One finished job on the session server (sam_tiny, permissive thresholds)."""
    multipart = {"image": {"name": "scene.png", "mimeType": "image/png", "buffer": image_bytes()},
                 **PERMISSIVE}
    response = api.post(server.url + "/segment", multipart=multipart)
    assert response.status == 200, response.text()
    return response.json()


def test_segment_answer_lists_urls_for_every_file(job):
    urls, files = job["urls"], job["files"]
    base = f"/results/{job['job_id']}"
    assert set(urls) == set(files) | {"archive"}
    assert urls["overlay"] == f"{base}/overlay.png" and urls["archive"] == f"{base}/archive.zip"
    assert len(urls["objects"]) == len(urls["masks"]) == job["objects_count"]
    assert [u.rsplit("/", 1)[1] for u in urls["objects"]] == [f.rsplit("/", 1)[1] for f in files["objects"]]


def test_every_url_serves_the_file_on_disk_with_its_content_type(api, server, job):
    urls, files = job["urls"], job["files"]
    pairs = [(urls[k], files[k]) for k in ("overlay", "metadata", "annotations")]
    pairs += list(zip(urls["masks"] + urls["objects"], files["masks"] + files["objects"], strict=True))
    for url, relative in pairs:
        response = api.get(server.url + url)
        assert response.status == 200, url
        expected_type = "application/json" if url.endswith(".json") else "image/png"
        assert response.headers["content-type"] == expected_type
        assert response.body() == (server.results_dir.parent / relative).read_bytes()


def test_archive_holds_every_result_file(api, server, job):
    response = api.get(server.url + job["urls"]["archive"])
    assert response.status == 200
    assert response.headers["content-type"] == "application/zip"
    assert f'filename="{job["job_id"]}.zip"' in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.body()))
    assert archive.testzip() is None
    folder = server.results_dir / job["output_dir"].split("/")[-1]
    assert sorted(n.split("/")[-1] for n in archive.namelist()) == sorted(p.name for p in folder.iterdir())
    assert not [p for p in server.results_dir.iterdir() if p.suffix == ".zip"]


def test_annotations_load_in_pycocotools_and_match_the_objects(api, server, job, tmp_path):
    annotations = api.get(server.url + job["urls"]["annotations"]).json()
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(annotations))
    coco = COCO(str(path))
    assert coco.getImgIds() == [1] and coco.imgs[1]["file_name"] == "scene.png"
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["object"]
    assert len(coco.getAnnIds(imgIds=[1])) == job["objects_count"]
    metadata = api.get(server.url + job["urls"]["metadata"]).json()
    for annotation, obj in zip(coco.loadAnns(coco.getAnnIds()), metadata["objects"], strict=True):
        assert coco.annToMask(annotation).shape == (120, 160)
        folder = server.results_dir / job["output_dir"].split("/")[-1]
        ys, xs = np.nonzero(np.asarray(Image.open(folder / obj["mask_file"])))
        # COCO's box: the extent of the object's mask in pixels
        extent = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
        assert annotation["bbox"] == obj["bbox"] == extent
        assert annotation["score"] == obj["predicted_iou"]
        assert obj["rle"]["size"] == [120, 160] and isinstance(obj["rle"]["counts"], str)
    # By default every annotation is exactly its mask: polygons where they can be, else RLE.
    forms = decoded_annotations_match_masks(api, server, job, tmp_path)
    assert "rle" in forms  # random weights: ragged masks, most with holes (the unit tests in
    # tests/services/results/test_exports.py cover exact polygons)


@pytest.mark.parametrize("form", ["polygons", "rle"])
def test_a_request_writes_every_annotation_as_polygons_or_rle(api, server, tmp_path, form):
    multipart = {"image": {"name": "scene.png", "mimeType": "image/png", "buffer": image_bytes()},
                 **PERMISSIVE, "coco_segmentation": form}
    job = api.post(server.url + "/segment", multipart=multipart).json()
    metadata = api.get(server.url + job["urls"]["metadata"]).json()
    assert metadata["coco_segmentation"] == form
    if form == "rle":
        assert decoded_annotations_match_masks(api, server, job, tmp_path) == {"rle"}
    else:  # what a polygon-only tool asks for: holes filled, nothing else changed
        coco = load_coco(api, server, job, tmp_path)
        for annotation in coco.loadAnns(coco.getAnnIds()):
            assert isinstance(annotation["segmentation"], list)
            mask = mask_png(api, server, job, annotation["id"] - 1)
            assert (coco.annToMask(annotation).astype(bool) >= mask).all()


def load_coco(api, server, job: dict, tmp_path) -> COCO:
    path = tmp_path / f"{job['job_id']}.json"
    path.write_bytes(api.get(server.url + job["urls"]["annotations"]).body())
    return COCO(str(path))


def mask_png(api, server, job: dict, index: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(api.get(server.url + job["urls"]["masks"][index]).body()))) > 0


def decoded_annotations_match_masks(api, server, job: dict, tmp_path) -> set[str]:
    """pycocotools' mask of every annotation equals its mask_N.png; the forms used."""
    coco, forms = load_coco(api, server, job, tmp_path), set()
    for index, annotation in enumerate(coco.loadAnns(coco.getAnnIds())):
        mask = mask_png(api, server, job, index)
        np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), mask)
        assert annotation["area"] == mask.sum()
        forms.add("polygons" if isinstance(annotation["segmentation"], list) else "rle")
    return forms


TRAVERSALS = [
    "..%2fmetadata.json", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252fetc%252fpasswd", "..%255c..%255cetc", "..\\..\\etc\\passwd", "..%5c..%5cetc%5cpasswd",
    "/etc/passwd", "%2fetc%2fpasswd", "..", "mask_00.png", "mask_-1.png", "object_999.png",
    "overlay.png%00.json", "server.log", "OVERLAY.PNG",
]


def get_raw(server, path: str) -> tuple[int, dict]:
    """GET with the path sent byte for byte: no client-side dot-segment cleanup."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("name", TRAVERSALS)
def test_paths_outside_the_result_files_are_not_found(server, job, name):
    status, body = get_raw(server, f"/results/{job['job_id']}/{name}")
    assert status == 404, name
    assert body["success"] is False and body["error_code"] == "NOT_FOUND"


@pytest.mark.parametrize("job_id", [
    "00000000-0000-4000-8000-000000000000",  # well formed, no such job
    "not-a-uuid", "..", "%2e%2e", "*", "12345678-1234-1234-1234-123456789abc",  # not uuid4
])
def test_unknown_or_malformed_job_ids_are_not_found(server, job_id):
    for file in ("overlay.png", "archive.zip"):
        status, body = get_raw(server, f"/results/{job_id}/{file}")
        assert status == 404 and body["error_code"] == "NOT_FOUND"


def test_a_traversal_through_the_job_id_is_not_found(server, job):
    folder = job["output_dir"].split("/")[-1]
    for path in (f"/results/..%2f{folder}/overlay.png", f"/results/../results/{job['job_id']}/overlay.png",
                 f"/results/{job['job_id']}%2f..%2f{job['job_id']}/overlay.png"):
        status, body = get_raw(server, path)
        assert status == 404 and body["error_code"] == "NOT_FOUND", path


def test_a_trailing_slash_is_not_found_rather_than_redirected(server, job):
    for path in (f"/results/{job['job_id']}/overlay.png/", f"/results/{job['job_id']}/",
                 f"/jobs/{job['job_id']}/"):
        status, body = get_raw(server, path)
        assert status == 404 and body["error_code"] == "NOT_FOUND", path


def test_job_id_in_upper_case_is_not_found(api, server, job):
    response = api.get(f"{server.url}/results/{job['job_id'].upper()}/overlay.png")
    assert response.status == 404


def test_temporary_folders_are_never_served(server):
    job_id = "9b2f6c1e-4a51-4d7e-9c39-0c7d3f8a1e2b"
    partial = server.results_dir / f".tmp-20260101T000000Z_{job_id}"
    partial.mkdir(parents=True)
    (partial / "overlay.png").write_bytes(image_bytes())
    for file in ("overlay.png", "archive.zip"):
        status, body = get_raw(server, f"/results/{job_id}/{file}")
        assert status == 404 and body["error_code"] == "NOT_FOUND"
