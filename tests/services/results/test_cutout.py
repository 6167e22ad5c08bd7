"""cut_out: RGBA crops whose alpha is the mask and whose pixels are the object's."""

import numpy as np

from app.services.engine.records import MaskRecord, encode_rle
from app.services.results.cutout import cut_out
from tests.images import scene_rgb


def test_cutout_is_cropped_to_the_mask_box_with_alpha_from_the_mask():
    image, mask = scene_rgb(), np.zeros((120, 160), bool)
    mask[10:40, 20:50] = True
    mask[10, 20] = False  # a hole: transparent in the cut-out
    record = MaskRecord(rle=encode_rle(mask), area=int(mask.sum()), predicted_iou=1,
                        stability_score=1, point_coords=[], crop_box=[0, 0, 160, 120])
    assert record.bbox == [20, 10, 30, 30]  # COCO's: the mask's extent in pixels
    rgba = cut_out(image, mask, record.bbox)
    assert rgba.shape == (30, 30, 4)
    np.testing.assert_array_equal(rgba[..., 3], mask[10:40, 20:50] * 255)
    np.testing.assert_array_equal(rgba[1:, 1:, :3], image[11:40, 21:50])
    assert rgba[0, 0].tolist() == [0, 0, 0, 0]
