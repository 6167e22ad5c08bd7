"""Meta's SAM 2.1 checkpoint format, loaded into transformers' Sam2Model: every key
accounted for, and a wrong file refused with the keys named."""

import pytest
import torch

from app.core.errors import ModelLoadFailed
from app.services.model.sam2_weights import build_sam2, load_meta_checkpoint, meta_to_transformers
from tests.sam2_oracle import TINY_TRUNK


@pytest.fixture
def meta_checkpoint(sam2_tiny_meta):
    return sam2_tiny_meta[1]  # the session's, shared with the oracle tests


def test_meta_keys_map_onto_every_sam2model_key(meta_checkpoint):
    state = torch.load(meta_checkpoint, weights_only=True)["model"]
    mapped = meta_to_transformers(state)
    expected = build_sam2(TINY_TRUNK).state_dict()
    assert set(mapped) == set(expected)
    assert all(mapped[k].shape == expected[k].shape for k in expected)
    video_only = sum(k.startswith(("memory_attention.", "memory_encoder.")) for k in state)
    assert video_only > 100  # dropped, not loaded


def test_loaded_weights_are_meta_weights(meta_checkpoint):
    model = build_sam2(TINY_TRUNK)
    load_meta_checkpoint(model, meta_checkpoint)
    state = torch.load(meta_checkpoint, weights_only=True)["model"]
    assert torch.equal(model.mask_decoder.iou_token.weight, state["sam_mask_decoder.iou_token.weight"])
    assert torch.equal(model.prompt_encoder.point_embed.weight[3],
                       state["sam_prompt_encoder.point_embeddings.3.weight"][0])


def test_wrong_file_is_model_load_failed_naming_the_keys(meta_checkpoint, tmp_path):
    state = torch.load(meta_checkpoint, weights_only=True)["model"]
    del state["sam_mask_decoder.iou_token.weight"]
    state["something.else"] = torch.zeros(1)
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": state}, wrong)
    with pytest.raises(ModelLoadFailed) as failure:
        load_meta_checkpoint(build_sam2(TINY_TRUNK), wrong)
    assert failure.value.details["missing_keys"] == ["mask_decoder.iou_token.weight"]
    assert failure.value.details["unexpected_keys"] == ["something.else"]
    assert "1 missing, 1 unexpected" in failure.value.message


def test_a_real_size_checkpoint_into_the_tiny_trunk_names_wrongly_shaped_keys(meta_checkpoint):
    with pytest.raises(ModelLoadFailed) as failure:
        load_meta_checkpoint(build_sam2("tiny"), meta_checkpoint)
    assert failure.value.details["mismatched_keys"] or failure.value.details["missing_keys"]
