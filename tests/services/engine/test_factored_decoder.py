"""The factored point decoder computes what segment_anything's MaskDecoder computes.

Its layer norms' weights and biases enter the factored form in several places, and
seeded random or default weights leave them at 1 and 0, so here every weight and bias
of the decoder is drawn at random and the answers are compared with the stock decoder
on the same prompts."""

import pytest
import torch

from app.services.engine.factored_decoder import PointMaskDecoder
from app.services.model.registry import build_sam_tiny


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    model = build_sam_tiny().eval()
    with torch.no_grad():
        for name, parameter in model.mask_decoder.named_parameters():
            spread = 0.3 if parameter.dim() == 1 else 0.1
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            parameter.copy_(base + spread * torch.randn_like(parameter))
    return model


@torch.inference_mode()
def test_masks_and_predicted_iou_equal_the_stock_decoders(sam):
    embedding = torch.randn(1, 128, 16, 16)
    points = torch.rand(6, 1, 2) * 256
    sparse, dense = sam.prompt_encoder(points=(points, torch.ones(6, 1, dtype=torch.int)),
                                       boxes=None, masks=None)
    image_pe = sam.prompt_encoder.get_dense_pe()
    stock_masks, stock_iou = sam.mask_decoder(
        image_embeddings=embedding, image_pe=image_pe, sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense, multimask_output=True)

    decoder = PointMaskDecoder(sam.mask_decoder)
    output_tokens = torch.cat([sam.mask_decoder.iou_token.weight,
                               sam.mask_decoder.mask_tokens.weight])
    tokens = torch.cat([output_tokens.expand(6, -1, -1), sparse], dim=1)
    state = decoder.image_state(embedding, dense[:1], image_pe)
    *per_prompt, iou = decoder(tokens, *state)
    masks = decoder.factored_masks(*per_prompt, *decoder.upscale_inputs(state))

    assert torch.allclose(iou, stock_iou, atol=1e-5)
    assert torch.allclose(masks, stock_masks, atol=1e-4)
    assert stock_masks.abs().max() > 0.1  # the comparison is not between near-zeros
