"""The agreement measure the benchmarks and the `fast` agreement test rely on."""

import numpy as np

from app.services.engine.records import MaskRecord, encode_rle
from bench.mask_agreement import compare_masks, compare_scenes


def record(box: tuple[int, int, int, int], point=(10.0, 10.0)) -> MaskRecord:
    mask = np.zeros((40, 40), bool)
    y0, x0, y1, x1 = box
    mask[y0:y1, x0:x1] = True
    return MaskRecord(rle=encode_rle(mask), area=int(mask.sum()), predicted_iou=0.9,
                      stability_score=0.9, point_coords=[list(point)], crop_box=[0, 0, 40, 40])


def test_identical_masks_agree_fully_and_a_shifted_one_by_its_iou():
    same = compare_masks([record((0, 0, 10, 10))], [record((0, 0, 10, 10))])
    assert (same.matched, same.mean_matched_iou) == (1, 1.0)
    shifted = compare_masks([record((0, 0, 10, 10))], [record((0, 5, 10, 15))])
    assert shifted.mean_matched_iou == 50 / 150


def test_an_extra_mask_in_one_scene_is_not_matched_with_a_missing_one_in_another():
    # Scene A: the candidate has one mask too many; scene B: one too few, from the same
    # grid point. Pooling the lists first would pair them (IoU 1/7) and lower the mean.
    kept = record((0, 0, 10, 10), point=(1.0, 1.0))
    scene_a = ([kept], [kept, record((20, 20, 30, 30))])
    scene_b = ([kept, record((25, 25, 35, 35))], [kept])

    agreement = compare_scenes([scene_a, scene_b])
    assert (agreement.reference_count, agreement.candidate_count) == (3, 3)
    assert agreement.matched == 2 and agreement.mean_matched_iou == 1.0
    pooled = compare_masks(scene_a[0] + scene_b[0], scene_a[1] + scene_b[1])
    assert pooled.matched == 3 and pooled.mean_matched_iou < 1.0
