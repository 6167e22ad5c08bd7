"""The pipeline run directly (no HTTP) on the real generator and a real sam_tiny."""

import json

import numpy as np
import pytest

from app.core.config import Settings
from app.core.errors import InvalidImage, JobAbandoned, StorageError
from app.schemas import GenerationParams, JobRequest
from app.services.engine.records import MaskRecord, encode_rle
from app.services.model.manager import ModelManager
from app.services.pipeline import StopSignal, run_job, select_objects
from tests.conftest import PERMISSIVE_PARAMS as PERMISSIVE
from tests.images import image_bytes


@pytest.fixture
def settings(tmp_path, tiny_checkpoint) -> Settings:
    return Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint,
                    RESULTS_DIR=tmp_path / "results")


@pytest.fixture
def manager(settings) -> ModelManager:
    return ModelManager(settings)


def run(data, settings, manager, params=PERMISSIVE):
    return run_job(JobRequest(image=data, params=params), manager, settings)


def test_metadata_records_phases_parameters_and_objects(settings, manager):
    result = run(image_bytes(), settings, manager)
    metadata = json.loads((settings.RESULTS_DIR / result.folder / "metadata.json").read_text())
    assert list(metadata["timings_ms"]) == ["received", "preprocessed", "model_loaded",
                                            "masks_generated", "objects_saved", "completed"]
    assert {"width": 160, "height": 120, "format": "PNG", "mode": "RGB"}.items() <= metadata["image"].items()
    assert metadata["model_type"] == "sam_tiny" and metadata["device"] == "cpu"
    assert metadata["parameters"]["points_per_side"] == 8
    assert not {"mask_threshold", "multimask_output", "use_m2m"} & set(metadata["parameters"])  # SAM 2.1 only
    assert len(metadata["objects"]) >= 1
    first = metadata["objects"][0]
    assert {"index", "bbox", "area", "predicted_iou", "stability_score", "point_coords",
            "crop_box", "mask_file", "object_file"} <= set(first)
    assert result.folder.endswith(result.job_id) and result.output_dir == f"results/{result.folder}"


def test_metadata_on_disk_is_exactly_the_result_returned(settings, manager):
    result = run(image_bytes(), settings, manager)
    on_disk = json.loads((settings.RESULTS_DIR / result.folder / "metadata.json").read_text())
    assert on_disk == json.loads(result.metadata.model_dump_json())
    timings = result.metadata.timings_ms
    assert timings.completed >= timings.masks_generated + timings.objects_saved


def test_masks_under_min_object_pixels_are_skipped_with_their_reason(settings, manager):
    everything = GenerationParams(**{**PERMISSIVE.model_dump(), "min_object_pixels": 160 * 120 + 1})
    result = run(image_bytes(), settings, manager, everything)
    assert result.metadata.objects == []
    assert result.metadata.skipped
    assert {s.reason for s in result.metadata.skipped} == {"smaller_than_min_object_pixels"}


def square(size: int) -> MaskRecord:
    mask = np.zeros((60, 60), bool)
    mask[:size, :size] = True
    return MaskRecord(rle=encode_rle(mask), area=size * size,
                      predicted_iou=0.9, stability_score=0.9, point_coords=[[0.0, 0.0]],
                      crop_box=[0, 0, 60, 60])


def test_objects_are_kept_largest_first_down_to_min_object_pixels():
    params = GenerationParams(min_object_pixels=100).applied(0)
    records = [square(5), square(20), square(10)]
    kept, skipped = select_objects(records, params, max_objects=10)
    assert [records[i].area for i in kept] == [400, 100]
    assert [(s.area, s.reason) for s in skipped] == [(25, "smaller_than_min_object_pixels")]


def test_objects_past_max_objects_are_skipped_with_the_bound():
    params = GenerationParams(min_object_pixels=0).applied(0)
    records = [square(5), square(20), square(10)]
    kept, skipped = select_objects(records, params, max_objects=1)
    assert [records[i].area for i in kept] == [400]
    assert [(s.area, s.reason, s.truncated_to) for s in skipped] == [
        (100, "max_objects", 1), (25, "max_objects", 1)]


def test_invalid_image_creates_no_folder(settings, manager):
    with pytest.raises(InvalidImage):
        run(b"garbage", settings, manager)
    assert not settings.RESULTS_DIR.exists() or list(settings.RESULTS_DIR.iterdir()) == []


def test_unwritable_results_dir_raises_storage_error_and_leaves_nothing(tmp_path, tiny_checkpoint):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the results folder should be")
    settings = Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint,
                        RESULTS_DIR=blocker / "results")
    with pytest.raises(StorageError) as failure:
        run(image_bytes(), settings, ModelManager(settings))
    assert failure.value.status == 507
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]


def test_successful_job_leaves_no_temporary_folder(settings, manager):
    run(image_bytes(), settings, manager)
    assert [p.name for p in settings.RESULTS_DIR.iterdir() if p.name.startswith(".tmp-")] == []


def test_progress_reports_each_phase_and_every_point_batch(settings, manager):
    seen = []
    request = JobRequest(image=image_bytes(), params=PERMISSIVE)
    run_job(request, manager, settings, progress=lambda phase, share: seen.append((phase, share)))
    phases = [phase for phase, _ in seen]
    assert phases[0] == "preprocessed" and phases[-1] == "completed"
    shares = [share for phase, share in seen if share is not None]
    assert shares and shares[-1] == 1.0 and shares == sorted(shares)


def test_a_cancelled_job_stops_after_the_batch_in_hand_and_writes_nothing(settings, manager):
    cancel, shares = StopSignal(), []

    def progress(phase, share):
        if phase == "masks_generated" and share is not None:
            shares.append(share)
            cancel.set()  # DELETE /jobs or the timeout, while masks are being generated

    params = PERMISSIVE.model_copy(update={"points_per_side": 16})  # 4 batches of 64
    request = JobRequest(image=image_bytes(), params=params)
    with pytest.raises(JobAbandoned):
        run_job(request, manager, settings, progress, cancel)
    assert len(shares) == 1 and shares[0] < 1  # the other batches never ran
    assert manager.loaded  # a cancel is not a predictor failure: no unload, no retry
    assert not settings.RESULTS_DIR.exists() or list(settings.RESULTS_DIR.iterdir()) == []


def test_prompted_objects_keep_prompt_order_and_skips_name_their_prompt():
    params = GenerationParams(min_object_pixels=50).applied(0)
    records = [square(5), square(0), square(10), square(20)]
    kept, skipped = select_objects(records, params, max_objects=10, prompted=True)
    assert kept == [2, 3]
    assert [(s.prompt_index, s.reason) for s in skipped] == [
        (0, "smaller_than_min_object_pixels"), (1, "empty_mask")]
