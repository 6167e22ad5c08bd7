"""ResultFolder: complete-or-absent folders, metadata written last, a readable overlay."""

import json

import numpy as np
import pytest

from app.core.errors import StorageError
from app.schemas import GenerationParams, ImageInfo, JobMetadata, Timings
from app.services.engine.records import MaskRecord, encode_rle
from app.services.results import writer as result_writer
from app.services.results.overlay import mask_colour, render_overlay
from app.services.results.storage.local import LocalStorage
from app.services.results.writer import ResultFolder
from tests.images import scene_rgb


def record(top: int, left: int, size: int) -> MaskRecord:
    mask = np.zeros((120, 160), bool)
    mask[top:top + size, left:left + size] = True
    return MaskRecord(rle=encode_rle(mask), area=int(mask.sum()), bbox=[left, top, size, size],
                      predicted_iou=0.9, stability_score=0.97,
                      point_coords=[[left + 1.0, top + 1.0]], crop_box=[0, 0, 160, 120])


def metadata_of(objects, skipped) -> JobMetadata:
    return JobMetadata(
        job_id="job", created_at="2026-01-01T00:00:00+00:00",
        image=ImageInfo(file_name="a.png", width=160, height=120, format="PNG", mode="RGB"),
        model_type="sam_tiny", device="cpu", precision="exact", precision_fallback_reason=None,
        parameters=GenerationParams().applied(0),
        timings_ms=Timings(received=0, preprocessed=0, model_loaded=0, masks_generated=0,
                           objects_saved=0, completed=0),
        retries=[], objects=objects, skipped=skipped)


def write(final, records):
    with ResultFolder(LocalStorage(final.parent), final.name) as folder:
        objects, skipped = folder.write_objects(scene_rgb(), records)
        metadata = metadata_of(objects, skipped)
        folder.commit(metadata)
    return metadata


def test_folder_appears_complete_under_its_final_name(tmp_path):
    final = tmp_path / "20260101T000000Z_job"
    metadata = write(final, [record(0, 0, 40), record(50, 60, 20)])
    assert [o.mask_file for o in metadata.objects] == ["mask_0.png", "mask_1.png"]
    written = json.loads((final / "metadata.json").read_text())
    assert written == json.loads(metadata.model_dump_json())
    assert sorted(p.name for p in final.iterdir()) == [
        "annotations.json", "mask_0.png", "mask_1.png", "metadata.json", "object_0.png",
        "object_1.png", "overlay.png"]
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_a_png_that_comes_out_empty_is_listed_as_skipped(tmp_path, monkeypatch):
    real_encode_png = result_writer.encode_png

    def encode_png_failing_for_the_small_object(pixels):
        return b"" if pixels.shape[:2] == (20, 20) else real_encode_png(pixels)

    monkeypatch.setattr(result_writer, "encode_png", encode_png_failing_for_the_small_object)
    final = tmp_path / "job"
    metadata = write(final, [record(0, 0, 40), record(50, 60, 20)])
    assert [o.index for o in metadata.objects] == [0]
    assert [s.model_dump() for s in metadata.skipped] == [
        {"index": 1, "area": 400, "reason": "file_missing_or_empty", "truncated_to": None,
         "prompt_index": None}]
    assert not (final / "object_1.png").exists() and not (final / "mask_1.png").exists()


def test_a_failed_write_leaves_no_folder_at_all(tmp_path, monkeypatch):
    def no_space(self, name, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ResultFolder, "_put", no_space)
    with pytest.raises(StorageError) as failure:
        write(tmp_path / "job", [record(0, 0, 40)])
    assert "No space left" in failure.value.details["reason"]
    assert list(tmp_path.iterdir()) == []


def test_a_folder_left_without_commit_is_removed(tmp_path):
    with ResultFolder(LocalStorage(tmp_path), "job") as folder:
        folder.write_objects(scene_rgb(), [record(0, 0, 40)])
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_temporary_folders(tmp_path):
    (tmp_path / ".tmp-crashed_job").mkdir()
    (tmp_path / "20260101T000000Z_done").mkdir()
    assert LocalStorage(tmp_path).sweep_temporary() == 1
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
