"""Small-region cleanup on SAM 2.1 works on the CPU (Meta's needs a CUDA extension)."""

import torch

from app.services.engine.sam2.holes import fill_holes_and_specks


def test_small_holes_are_filled_and_small_specks_cleared_on_cpu():
    logits = torch.full((1, 32, 32), -5.0)
    logits[0, 5:25, 5:25] = 5.0  # an object...
    logits[0, 10:12, 10:12] = -5.0  # ...with a 4-pixel hole
    logits[0, 28:30, 28:30] = 5.0  # and a 4-pixel speck apart from it
    out = fill_holes_and_specks(logits, 0.0, max_area=4)
    assert out.device.type == "cpu"
    assert (out[0, 10:12, 10:12] > 0).all() and (out[0, 28:30, 28:30] <= 0).all()
    assert (out[0, 5:25, 5:25] > 0).all() and (out[0, 0, 0] <= 0)


def test_regions_larger_than_the_area_are_kept():
    logits = torch.full((1, 32, 32), -5.0)
    logits[0, 5:25, 5:25] = 5.0
    logits[0, 10:13, 10:13] = -5.0  # 9 pixels
    assert torch.equal(fill_holes_and_specks(logits, 0.0, max_area=8), logits)
    assert torch.equal(fill_holes_and_specks(logits, 0.0, max_area=0), logits)
