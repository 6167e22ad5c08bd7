"""How closely two automatic-mask results agree: used by the benchmark and the tests
to compare `MaskEngine` with the stock `SamAutomaticMaskGenerator`."""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


@dataclass(frozen=True)
class Agreement:
    reference_count: int
    candidate_count: int
    matched: int  # one-to-one pairs with IoU > 0
    mean_matched_iou: float  # over the matched pairs (1.0 when both results are empty)
    min_matched_iou: float

    @property
    def count_ratio(self) -> float:
        return self.candidate_count / max(self.reference_count, 1)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "count_ratio": round(self.count_ratio, 4)}


def _rles(records: list[dict[str, Any]]) -> list[dict]:
    return [mask_utils.encode(np.asfortranarray(r["segmentation"].astype(np.uint8)))
            for r in records]


def compare_masks(reference: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> Agreement:
    """Greedy one-to-one matching of binary-mask records by mask IoU, best pairs first."""
    if not reference or not candidate:
        both_empty = not reference and not candidate
        return Agreement(len(reference), len(candidate), 0, float(both_empty), float(both_empty))
    ious = mask_utils.iou(_rles(candidate), _rles(reference), [0] * len(reference))
    # Two empty masks are the same mask (pycocotools gives them IoU 0).
    empty_c = np.array([r["area"] == 0 for r in candidate])
    empty_r = np.array([r["area"] == 0 for r in reference])
    ious[np.outer(empty_c, empty_r)] = 1.0
    pairs = np.argwhere(ious > 0)
    order = np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable")
    used_c, used_r, matched = set(), set(), []
    for c, r in pairs[order]:
        if c not in used_c and r not in used_r:
            used_c.add(c)
            used_r.add(r)
            matched.append(float(ious[c, r]))
    return Agreement(len(reference), len(candidate), len(matched),
                     float(np.mean(matched)) if matched else 0.0,
                     float(np.min(matched)) if matched else 0.0)
