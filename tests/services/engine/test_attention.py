"""Global attention a few heads at a time: the encoder's numbers are stock's."""

import pytest
import torch

from app.services.engine import attention
from app.services.model.registry import build_sam_tiny


def test_head_groups_give_the_stock_encoder_output_bit_for_bit():
    torch.manual_seed(0)
    stock = build_sam_tiny().eval()
    grouped = build_sam_tiny().eval()
    grouped.load_state_dict(stock.state_dict())
    attention.attend_by_head_groups(grouped.image_encoder)
    image = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        expected = stock.image_encoder(image)
        assert attention.HEADS_AT_ONCE < grouped.image_encoder.blocks[2].attn.num_heads  # really split
        assert torch.equal(grouped.image_encoder(image), expected)


@pytest.mark.parametrize("mask_elements", [attention.MASK_ELEMENTS, 1])  # 1: a head at a time
def test_fused_attention_gives_the_stock_encoder_output_up_to_rounding(monkeypatch,
                                                                      mask_elements):
    """`fast`'s fused kernel with the relative positions as its mask: same mathematics,
    in every block (windowed and global), whichever order its sums run in."""
    monkeypatch.setattr(attention, "MASK_ELEMENTS", mask_elements)
    torch.manual_seed(0)
    stock = build_sam_tiny().eval()
    fused = build_sam_tiny().eval()
    fused.load_state_dict(stock.state_dict())
    for model in (stock, fused):  # positions of a trained size, not seeded-random zeros
        for block in model.image_encoder.blocks:
            torch.manual_seed(1)
            block.attn.rel_pos_h.data.normal_(0, 0.5)
            block.attn.rel_pos_w.data.normal_(0, 0.5)
    attention.attend_fused(fused.image_encoder)
    image = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        expected = stock.image_encoder(image)
        got = fused.image_encoder(image)
    assert {block.window_size > 0 for block in fused.image_encoder.blocks} == {True, False}
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
