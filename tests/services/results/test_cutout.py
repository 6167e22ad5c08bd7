"""cut_out: RGBA crops whose alpha is the mask and whose pixels are the object's."""

import numpy as np

from app.services.results.cutout import cut_out
from tests.images import scene_rgb


def test_cutout_is_cropped_to_the_mask_box_with_alpha_from_the_mask():
    image, mask = scene_rgb(), np.zeros((120, 160), bool)
    mask[10:40, 20:50] = True
    mask[10, 20] = False  # a hole: transparent in the cut-out
    cutout = cut_out(image, mask)
    assert cutout.bbox == (20, 10, 30, 30)
    assert cutout.rgba.shape == (30, 30, 4)
    np.testing.assert_array_equal(cutout.rgba[..., 3], mask[10:40, 20:50] * 255)
    np.testing.assert_array_equal(cutout.rgba[1:, 1:, :3], image[11:40, 21:50])
    assert cutout.rgba[0, 0].tolist() == [0, 0, 0, 0]
