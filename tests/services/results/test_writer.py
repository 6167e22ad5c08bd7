"""ResultFolder: complete-or-absent folders, metadata written last, a readable overlay."""

import json
import os

import numpy as np
import pytest

from app.core.errors import StorageError
from app.schemas import GenerationParams, ImageInfo, JobMetadata, Timings
from app.services.engine.records import MaskRecord, encode_rle
from app.services.results import writer as result_writer
from app.services.results.overlay import mask_colour, render_overlay
from app.services.results.storage import local
from app.services.results.storage.local import LocalStorage
from app.services.results.writer import ResultFolder
from tests.images import scene_rgb


def record(top: int, left: int, size: int) -> MaskRecord:
    mask = np.zeros((120, 160), bool)
    mask[top:top + size, left:left + size] = True
    return MaskRecord(rle=encode_rle(mask), area=int(mask.sum()),
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index", final.name]
    assert LocalStorage(tmp_path).find("job") == final.name  # by its index entry


def test_files_go_to_the_temporary_folder_and_metadata_is_put_last(tmp_path, monkeypatch):
    """The commit protocol itself: until the rename only `.tmp-<name>` exists, and
    metadata.json (the marker readers and retention go by) is the last file put."""
    name, seen = "20260101T000000Z_job", []
    put = local._LocalWriter.put

    def watched_put(writer, file, data):
        seen.append((file, sorted(p.name for p in tmp_path.iterdir() if p.name != ".index")))
        put(writer, file, data)

    monkeypatch.setattr(local._LocalWriter, "put", watched_put)
    write(tmp_path / name, [record(0, 0, 40)])
    assert [file for file, _ in seen][-2:] == ["annotations.json", "metadata.json"]
    assert {file for file, _ in seen} == {"overlay.png", "mask_0.png", "object_0.png",
                                          "annotations.json", "metadata.json"}
    assert all(present == [".tmp-" + name] for _, present in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index", name]


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
    real_write_bytes = local.Path.write_bytes

    def no_space_for_images(path, data):
        if path.suffix == ".png":
            raise OSError(28, "No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(local.Path, "write_bytes", no_space_for_images)
    with pytest.raises(StorageError) as failure:
        write(tmp_path / "x_job", [record(0, 0, 40)])
    assert "No space left" in failure.value.details["reason"]
    assert [p.name for p in tmp_path.iterdir()] == [".index"]
    assert list((tmp_path / ".index").iterdir()) == []


def test_a_folder_left_without_commit_is_removed(tmp_path):
    with ResultFolder(LocalStorage(tmp_path), "x_job") as folder:
        folder.write_objects(scene_rgb(), [record(0, 0, 40)])
    assert [p.name for p in tmp_path.iterdir()] == [".index"]
    assert LocalStorage(tmp_path).find("job") is None


def test_sweep_removes_only_stale_temporary_folders(tmp_path):
    """Another process's folder still being written (on a shared volume) is kept."""
    for name in (".tmp-20260101T000000Z_crashed", ".tmp-20260101T000000Z_writing",
                 "20260101T000000Z_done"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "overlay.png").write_bytes(b"png")
    hour_ago = tmp_path.stat().st_mtime - 3600
    for path in (tmp_path / ".tmp-20260101T000000Z_crashed").rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    os.utime(tmp_path / ".tmp-20260101T000000Z_crashed", (hour_ago, hour_ago))
    assert LocalStorage(tmp_path).sweep(older_than_s=600, now=hour_ago + 3600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-20260101T000000Z_writing", "20260101T000000Z_done"]


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
