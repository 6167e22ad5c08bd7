"""How sam_tiny/evaluate.py scores one scene: the figures in docs/sam_tiny.md rest on it."""

import numpy as np

from sam_tiny.evaluate import score_scene


def _square(top, left, side, size=20):
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_scoring_separates_recovered_duplicate_unmatched_and_background_masks():
    found, missed = _square(2, 2, 6), _square(12, 12, 6)
    background = ~(found | missed)
    speck = _square(0, 18, 2)
    slightly_off = _square(3, 2, 6)  # IoU 5/7 with `found`: not recovered, not unmatched either
    score = score_scene([found, missed], [found, found.copy(), background, speck, slightly_off])
    assert score["recovered"] == 1
    assert score["best_iou_per_object"] == [1.0, 0.0]
    assert score["duplicate_masks"] == 1
    assert score["unmatched_masks"] == 2  # the background and the speck
    assert score["background_masks"] == 1
    assert score["masks"] == 5
