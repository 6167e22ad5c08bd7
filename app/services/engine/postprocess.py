"""`SamAutomaticMaskGenerator.postprocess_small_regions`, on the engine's records: one
mask is decoded at a time, so memory does not grow with megapixels times masks."""

from dataclasses import replace

import torch
from segment_anything.utils.amg import batched_mask_to_box, remove_small_regions
from torchvision.ops.boxes import batched_nms

from app.services.deadline import checkpoint
from app.services.engine.records import MaskRecord, encode_rle


def remove_small_regions_and_duplicates(records: list[MaskRecord], min_area: int,
                                        nms_thresh: float) -> list[MaskRecord]:
    """Fill holes and drop islands smaller than `min_area`, then rerun box NMS,
    preferring masks that needed no change. Changed masks get a new RLE and area
    (their bbox is read off the RLE); the kept records come in NMS order, as stock's do."""
    if not records:
        return records
    cleaned, boxes, scores = [], [], []
    for record in records:
        checkpoint()  # thousands of candidates: a job past its deadline stops here
        mask = record.mask()
        mask, changed_holes = remove_small_regions(mask, min_area, mode="holes")
        mask, changed_islands = remove_small_regions(mask, min_area, mode="islands")
        box = batched_mask_to_box(torch.as_tensor(mask)[None])[0]  # NMS boxes, as stock's
        unchanged = not (changed_holes or changed_islands)
        if not unchanged:
            record = replace(record, rle=encode_rle(mask), area=int(mask.sum()))
        cleaned.append(record)
        boxes.append(box)
        scores.append(float(unchanged))
    keep = batched_nms(torch.stack(boxes).float(), torch.as_tensor(scores),
                       torch.zeros(len(boxes)), iou_threshold=nms_thresh)
    return [cleaned[i] for i in keep.tolist()]
