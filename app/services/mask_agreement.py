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
    matched: int  # one-to-one pairs with IoU > 0 (two empty masks: IoU 1)
    mean_matched_iou: float  # over the matched pairs (1.0 when both results are empty)
    min_matched_iou: float

    @property
    def count_ratio(self) -> float:
        if self.reference_count == 0:
            return 1.0 if self.candidate_count == 0 else float("inf")
        return self.candidate_count / self.reference_count

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "count_ratio": round(self.count_ratio, 4)}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union  # two empty masks agree


def _greedy(pairs: list[tuple[float, int, int]], used_c: set, used_r: set) -> list[float]:
    """Best pairs first, each mask used once; returns the IoUs of the pairs taken."""
    taken = []
    for iou, c, r in sorted(pairs, key=lambda p: -p[0]):
        if iou > 0 and c not in used_c and r not in used_r:
            used_c.add(c)
            used_r.add(r)
            taken.append(iou)
    return taken


def compare_masks(reference: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> Agreement:
    """One-to-one matching of binary-mask records by mask IoU, best pairs first. Masks
    from the same point prompt are paired first (cheap, and where twins come from);
    the masks left over are then matched against each other by COCO mask IoU."""
    by_point: dict[tuple, list[int]] = {}
    for r, record in enumerate(reference):
        by_point.setdefault(tuple(np.round(record["point_coords"][0], 3)), []).append(r)
    pairs = [(_iou(record["segmentation"], reference[r]["segmentation"]), c, r)
             for c, record in enumerate(candidate)
             for r in by_point.get(tuple(np.round(record["point_coords"][0], 3)), [])]
    used_c, used_r = set(), set()
    matched = _greedy(pairs, used_c, used_r)
    left_c = [c for c in range(len(candidate)) if c not in used_c]
    left_r = [r for r in range(len(reference)) if r not in used_r]
    if left_c and left_r:
        ious = mask_utils.iou([_rle(candidate[c]) for c in left_c],
                              [_rle(reference[r]) for r in left_r], [0] * len(left_r))
        matched += _greedy([(float(ious[i, j]), c, r) for i, c in enumerate(left_c)
                            for j, r in enumerate(left_r)], used_c, used_r)
    if not reference and not candidate:
        return Agreement(0, 0, 0, 1.0, 1.0)
    return Agreement(len(reference), len(candidate), len(matched),
                     float(np.mean(matched)) if matched else 0.0,
                     float(np.min(matched)) if matched else 0.0)


def _rle(record: dict[str, Any]) -> dict:
    return mask_utils.encode(np.asfortranarray(record["segmentation"].astype(np.uint8)))
