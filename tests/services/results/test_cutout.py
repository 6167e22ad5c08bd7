"""ObjectExtractor: RGBA crops whose alpha is the mask and whose pixels are the object's."""

import numpy as np

from app.services.results.cutout import ObjectExtractor
from tests.images import scene_rgb


def square_mask(shape=(120, 160), top=10, left=20, size=30) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_cutout_is_cropped_to_the_mask_box_with_alpha_from_the_mask():
    image, mask = scene_rgb(), square_mask()
    mask[10, 20] = False  # a hole: transparent in the cut-out
    cutout = ObjectExtractor().extract(image, mask)
    assert cutout.bbox == (20, 10, 30, 30) and cutout.area == 30 * 30 - 1
    assert cutout.rgba.shape == (30, 30, 4)
    np.testing.assert_array_equal(cutout.rgba[..., 3], mask[10:40, 20:50] * 255)
    np.testing.assert_array_equal(cutout.rgba[1:, 1:, :3], image[11:40, 21:50])
    assert cutout.rgba[0, 0].tolist() == [0, 0, 0, 0]


def test_masks_under_min_pixels_are_not_kept():
    extractor = ObjectExtractor(min_pixels=901)
    assert not extractor.keeps(square_mask(size=30))
    assert extractor.keeps(square_mask(size=31))


def test_empty_mask_is_never_kept():
    assert not ObjectExtractor(min_pixels=0).keeps(np.zeros((5, 5), bool))
