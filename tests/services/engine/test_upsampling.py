"""`fast`'s full-size masks, computed only where a mask can lie, equal thresholding
the whole upsampled logits; region RLEs equal pycocotools' own."""

import numpy as np
import pytest
import torch

from app.services.engine.records import encode_rle, encode_rle_region
from app.services.engine.upsampling import (full_logits, region_mask, trim_to_mask,
                                            working_boxes, working_logits)


@pytest.mark.parametrize("crop_size", [(300, 400), (97, 131), (192, 256)])
def test_region_mask_equals_thresholded_full_logits(crop_size):
    torch.manual_seed(0)
    low_res = torch.randn(6, 64, 64) * 4 - 3  # a few blobs above the 0 threshold
    low_res[0] = -10.0  # and one empty mask
    input_size = (192, 256)
    working = working_logits(low_res, 256, input_size)
    full = full_logits(low_res, 256, input_size, crop_size) > 0.0
    for logits, box, expected in zip(working, working_boxes(working > 0.0), full):
        region, top, left = region_mask(logits, box, 0.0, crop_size)
        whole = np.zeros(crop_size, bool)
        whole[top: top + region.shape[0], left: left + region.shape[1]] = region
        mismatched = (whole != expected.numpy()).sum()
        assert mismatched <= 2, "only float rounding at the threshold may differ"


def test_region_rle_equals_pycocotools_encoding():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = np.zeros((int(rng.integers(1, 30)), int(rng.integers(1, 30))), bool)
        y0, x0 = rng.integers(0, mask.shape)
        mask[y0: y0 + 7, x0: x0 + 5] = rng.random(mask[y0: y0 + 7, x0: x0 + 5].shape) < 0.6
        region, top, left = trim_to_mask(mask)
        assert encode_rle_region(region, top, left, mask.shape)["counts"] == \
            encode_rle(mask)["counts"]
