"""The pipeline run directly (no HTTP) on the real generator and a real sam_tiny."""

import json

import pytest

from app.core.config import Settings
from app.core.errors import InvalidImage, StorageError
from app.schemas import GenerationParams
from app.services.model.manager import ModelManager
from app.services.pipeline import segment_image
from tests.images import image_bytes

PERMISSIVE = GenerationParams(points_per_side=8, pred_iou_thresh=0, stability_score_thresh=0,
                              min_object_pixels=0)


@pytest.fixture
def settings(tmp_path, tiny_checkpoint) -> Settings:
    return Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint,
                    RESULTS_DIR=tmp_path / "results")


@pytest.fixture
def manager(settings) -> ModelManager:
    return ModelManager(settings)


def run(data, settings, manager, params=PERMISSIVE):
    import asyncio
    return asyncio.run(segment_image(data, params, manager, settings))


def test_metadata_records_phases_parameters_and_objects(settings, manager):
    result = run(image_bytes(), settings, manager)
    metadata = json.loads((result.output_dir / "metadata.json").read_text())
    assert list(metadata["timings_ms"]) == ["received", "preprocessed", "model_loaded",
                                            "masks_generated", "objects_saved", "completed"]
    assert {"width": 160, "height": 120, "format": "PNG", "mode": "RGB"}.items() <= metadata["image"].items()
    assert metadata["model_type"] == "sam_tiny" and metadata["device"] == "cpu"
    assert metadata["parameters"]["points_per_side"] == 8
    assert len(metadata["objects"]) >= 1
    first = metadata["objects"][0]
    assert {"index", "bbox", "area", "predicted_iou", "stability_score", "point_coords",
            "crop_box", "mask_file", "object_file"} <= set(first)
    assert result.output_dir.name.endswith(result.job_id)


def test_masks_under_min_object_pixels_are_skipped_with_their_reason(settings, manager):
    everything = GenerationParams(**{**PERMISSIVE.model_dump(), "min_object_pixels": 160 * 120 + 1})
    result = run(image_bytes(), settings, manager, everything)
    assert result.metadata["objects"] == []
    assert result.metadata["skipped"]
    assert {s["reason"] for s in result.metadata["skipped"]} == {"smaller_than_min_object_pixels"}


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
    assert [p.name for p in settings.RESULTS_DIR.iterdir() if p.name.startswith(".")] == []
