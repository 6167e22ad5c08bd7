"""`SamAutomaticMaskGenerator.postprocess_small_regions`, on binary masks instead of
run-length encodings (the engine never encodes masks it may still change)."""

import numpy as np
import torch
from segment_anything.utils.amg import MaskData, batched_mask_to_box, remove_small_regions
from torchvision.ops.boxes import batched_nms


def remove_small_regions_and_duplicates(data: MaskData, masks: list[np.ndarray],
                                        min_area: int, nms_thresh: float) -> list[np.ndarray]:
    """Fill holes and drop islands smaller than `min_area`, then rerun box NMS,
    preferring masks that needed no change. Filters `data` in place (boxes of changed
    masks recomputed) and returns the kept masks."""
    if not masks:
        return masks
    new_masks, scores = [], []
    for mask in masks:
        mask, changed_holes = remove_small_regions(mask, min_area, mode="holes")
        mask, changed_islands = remove_small_regions(mask, min_area, mode="islands")
        new_masks.append(mask)
        scores.append(float(not (changed_holes or changed_islands)))
    boxes = batched_mask_to_box(torch.as_tensor(np.stack(new_masks)))
    keep = batched_nms(boxes.float(), torch.as_tensor(scores), torch.zeros(len(boxes)),
                       iou_threshold=nms_thresh)
    for i in keep.tolist():
        if scores[i] == 0.0:
            data["boxes"][i] = boxes[i].numpy()
    data.filter(keep)
    return [new_masks[i] for i in keep.tolist()]
