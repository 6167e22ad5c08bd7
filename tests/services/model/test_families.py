"""Model families as data: each takes its own generator's parameters and defaults, and
a parameter the running family does not take is refused by name."""

import pytest

from app.core.config import Settings
from app.core.errors import InvalidRequest
from app.schemas import GenerationParams
from app.services.model.families import FAMILIES, check_parameters, family_of
from app.services.model.registry import MODEL_REGISTRY


def test_every_registered_model_names_a_family_and_settings_accept_it():
    for name, spec in MODEL_REGISTRY.items():
        assert spec.family in FAMILIES
        assert Settings(DEFAULT_MODEL=name).DEFAULT_MODEL == name
    assert family_of("sam2.1_hiera_tiny").name == "sam2.1" and family_of("vit_b").name == "sam1"


def test_unset_parameters_get_the_family_defaults_in_metadata():
    sam1 = GenerationParams().applied(100, FAMILIES["sam1"].parameters)
    sam2 = GenerationParams().applied(100, FAMILIES["sam2.1"].parameters)
    assert sam1.pred_iou_thresh == 0.88 and sam1.use_m2m is None  # not a SAM 1 parameter
    assert sam2.pred_iou_thresh == 0.8 and sam2.mask_threshold == 0.0
    assert sam2.multimask_output is True and sam2.use_m2m is False
    assert GenerationParams(pred_iou_thresh=0.5).applied(0, FAMILIES["sam2.1"].parameters
                                                         ).pred_iou_thresh == 0.5


def test_a_parameter_of_the_other_family_is_refused_by_name():
    with pytest.raises(InvalidRequest) as failure:
        check_parameters("vit_b", {"points_per_side", "use_m2m", "mask_threshold"})
    errors = failure.value.details["errors"]
    assert [e["field"] for e in errors] == ["mask_threshold", "use_m2m"]
    assert "does not apply to vit_b" in errors[0]["message"]
    check_parameters("sam2.1_hiera_tiny", {"use_m2m", "pred_iou_thresh", "min_object_pixels"})
