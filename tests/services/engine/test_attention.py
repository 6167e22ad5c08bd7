"""Global attention a few heads at a time: the encoder's numbers are stock's."""

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
