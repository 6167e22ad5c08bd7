"""How closely two sets of masks agree: the one IoU the project measures with (the
benchmark, the engine's agreement tests and the sam_tiny evaluation all use it)."""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from app.services.engine.records import MaskRecord


def iou_matrix(rows: list[np.ndarray], columns: list[np.ndarray]) -> np.ndarray:
    """Mask IoU of every H x W boolean mask in `rows` with every one in `columns`."""
    if not rows or not columns:
        return np.zeros((len(rows), len(columns)))
    return rle_iou_matrix(_rles(rows), _rles(columns))


def rle_iou_matrix(a: list[dict], b: list[dict]) -> np.ndarray:
    """The same on compressed RLEs (exact, and memory-cheap for big images). Two empty
    masks count as identical (IoU 1)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    ious = np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))
    empty_a = mask_utils.area(a) == 0
    empty_b = mask_utils.area(b) == 0
    ious[np.outer(empty_a, empty_b)] = 1.0
    return ious


def _rles(masks: list[np.ndarray]) -> list[dict]:
    return mask_utils.encode(np.asfortranarray(np.stack(masks, axis=-1).astype(np.uint8)))


@dataclass(frozen=True)
class Agreement:
    reference_count: int
    candidate_count: int
    matched: int  # one-to-one pairs with IoU > 0
    mean_matched_iou: float  # over the matched pairs (1.0 when both results are empty)
    min_matched_iou: float

    @property
    def count_ratio(self) -> float:
        if self.reference_count == 0:
            return 1.0 if self.candidate_count == 0 else float("inf")
        return self.candidate_count / self.reference_count

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "count_ratio": round(self.count_ratio, 4)}


def _greedy(pairs: list[tuple[float, int, int]], used_c: set, used_r: set) -> list[float]:
    """Best pairs first, each mask used once; returns the IoUs of the pairs taken."""
    taken = []
    for iou, c, r in sorted(pairs, key=lambda p: -p[0]):
        if iou > 0 and c not in used_c and r not in used_r:
            used_c.add(c)
            used_r.add(r)
            taken.append(iou)
    return taken


def compare_masks(reference: list[MaskRecord], candidate: list[MaskRecord]) -> Agreement:
    """One-to-one matching by mask IoU, best pairs first, of one image's masks."""
    return compare_scenes([(reference, candidate)])


def compare_scenes(scenes: list[tuple[list[MaskRecord], list[MaskRecord]]]) -> Agreement:
    """`compare_masks` over several images, pooled: masks are matched within their own
    image only (pooling first would pair one image's extra mask with another image's
    missing one whenever they came from the same grid point)."""
    matched = [iou for reference, candidate in scenes for iou in _matched(reference, candidate)]
    if not any(r or c for r, c in scenes):
        return Agreement(0, 0, 0, 1.0, 1.0)
    return Agreement(sum(len(r) for r, _ in scenes), sum(len(c) for _, c in scenes),
                     len(matched), float(np.mean(matched)) if matched else 0.0,
                     float(np.min(matched)) if matched else 0.0)


def _matched(reference: list[MaskRecord], candidate: list[MaskRecord]) -> list[float]:
    """The IoUs of the one-to-one pairs. Masks from the same point prompt are paired
    first (cheap, and where twins come from); the masks left over are then matched
    against each other."""
    by_point: dict[tuple, list[int]] = {}
    for r, record in enumerate(reference):
        by_point.setdefault(_point(record), []).append(r)
    pairs = []
    for c, record in enumerate(candidate):
        twins = by_point.get(_point(record), [])
        if twins:
            ious = rle_iou_matrix([record.rle], [reference[r].rle for r in twins])[0]
            pairs += [(float(iou), c, r) for iou, r in zip(ious, twins)]
    used_c, used_r = set(), set()
    matched = _greedy(pairs, used_c, used_r)
    left_c = [c for c in range(len(candidate)) if c not in used_c]
    left_r = [r for r in range(len(reference)) if r not in used_r]
    if left_c and left_r:
        ious = rle_iou_matrix([candidate[c].rle for c in left_c], [reference[r].rle for r in left_r])
        matched += _greedy([(float(ious[i, j]), c, r) for i, c in enumerate(left_c)
                            for j, r in enumerate(left_r)], used_c, used_r)
    return matched


def _point(record: MaskRecord) -> tuple:
    return tuple(np.round(record.point_coords[0], 3))
