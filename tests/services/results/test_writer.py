"""write_job_folder: complete-or-absent folders, checked files, a readable overlay."""

import json

import numpy as np
import pytest

from app.core.errors import StorageError
from app.services.results import writer as result_writer
from app.services.results.cutout import ObjectExtractor
from app.services.results.overlay import mask_colour, render_overlay
from app.services.results.writer import sweep_temporary_folders, write_job_folder
from tests.images import scene_rgb


def record(top: int, left: int, size: int) -> dict:
    mask = np.zeros((120, 160), bool)
    mask[top:top + size, left:left + size] = True
    return {"segmentation": mask, "area": int(mask.sum()), "predicted_iou": 0.9,
            "stability_score": 0.97, "point_coords": [[left + 1.0, top + 1.0]],
            "crop_box": [0, 0, 160, 120]}


def metadata_of(objects, skipped):
    return {"job_id": "job", "created_at": "2026-01-01T00:00:00+00:00", "model_type": "sam_tiny",
            "image": {"width": 160, "height": 120}, "objects": objects, "skipped": skipped}


def test_folder_appears_complete_under_its_final_name(tmp_path):
    final = tmp_path / "20260101T000000Z_job"
    metadata = write_job_folder(final, scene_rgb(), [record(0, 0, 40), record(50, 60, 20)],
                                ObjectExtractor(), metadata_of)
    assert [o["mask_file"] for o in metadata["objects"]] == ["mask_0.png", "mask_1.png"]
    assert json.loads((final / "metadata.json").read_text())["objects"] == metadata["objects"]
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_a_file_that_comes_out_empty_is_removed_and_listed_as_skipped(tmp_path, monkeypatch):
    real_write_png = result_writer.write_png

    def write_png_failing_for_object_1(path, pixels):
        if path.name == "object_1.png":
            path.write_bytes(b"")  # what a full disk can leave behind
        else:
            real_write_png(path, pixels)

    monkeypatch.setattr(result_writer, "write_png", write_png_failing_for_object_1)
    final = tmp_path / "job"
    metadata = write_job_folder(final, scene_rgb(), [record(0, 0, 40), record(50, 60, 20)],
                                ObjectExtractor(), metadata_of)
    assert [o["index"] for o in metadata["objects"]] == [0]
    assert metadata["skipped"] == [{"index": 1, "area": 400, "reason": "file_missing_or_empty"}]
    assert not (final / "object_1.png").exists() and not (final / "mask_1.png").exists()


def test_a_failed_write_leaves_no_folder_at_all(tmp_path, monkeypatch):
    def no_space(path, pixels):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(result_writer, "write_png", no_space)
    with pytest.raises(StorageError) as failure:
        write_job_folder(tmp_path / "job", scene_rgb(), [record(0, 0, 40)], ObjectExtractor(),
                         metadata_of)
    assert "No space left" in failure.value.details["reason"]
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_temporary_folders(tmp_path):
    (tmp_path / ".tmp-crashed_job").mkdir()
    (tmp_path / "20260101T000000Z_done").mkdir()
    assert sweep_temporary_folders(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["20260101T000000Z_done"]


def test_overlay_tints_masked_pixels_and_leaves_the_rest():
    image = np.full((50, 50, 3), 100, np.uint8)
    mask = np.zeros((50, 50), bool)
    mask[10:40, 10:40] = True
    overlay = render_overlay(image, [mask])
    assert overlay[0, 0].tolist() == [100, 100, 100]
    inside = overlay[25, 25].astype(int)
    expected = (np.array([100] * 3) * 0.55 + np.array(mask_colour(0)) * 0.45).astype(int)
    assert np.abs(inside - expected).max() <= 1
    assert overlay[10, 25].tolist() == list(mask_colour(0))  # the outline
