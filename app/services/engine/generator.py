"""Automatic mask generation with the records of `SamAutomaticMaskGenerator.generate`,
faster: the same grid of point prompts, filters, NMS and record fields, but

- prompts are decoded by `SamRuntime` (rearranged decoder, compiled, fixed batches);
- the predicted-IoU filter runs on the low-resolution logits, so only the masks that
  pass it are upsampled (the filter never looked at the upsampled masks);
- masks stay low-resolution tensors until NMS has chosen the kept ones; only those
  are upsampled again, a chunk at a time, each encoded to RLE at once, so memory is
  bounded whatever the image size and the mask count.

`exact` scores stability and boxes on full-size logits, as stock does, so its masks
are stock's. `fast`, on images larger than the model's input, scores them at the
model's working resolution (the 1024 input) and upsamples to full size only the kept
masks, only where each can lie (`upsampling.region_mask`): its cost barely grows with
megapixels.
"""

import numpy as np
import torch
from segment_anything.utils.amg import (MaskData, batch_iterator, batched_mask_to_box,
                                        box_xyxy_to_xywh, calculate_stability_score)
from torch import Tensor

from app.services.deadline import checkpoint
from app.services.engine.crop_loop import CropLoop, DecodeBatch
from app.services.engine.records import MaskRecord, encode_rle_region
from app.services.engine.runtime import SamRuntime
from app.services.engine.upsampling import (chunk_size, fast_boxes, full_logits,
                                            region_mask, trim_to_mask, working_boxes,
                                            working_logits)

# Full-size temporaries (logits, comparisons) held at once: 16 masks at 1 MP, one at
# a time on a 24 MP photo, so peak memory stays flat as images grow.
_MEMORY_BUDGET = 256 * 2**20


class MaskEngine(CropLoop):
    """Takes the keyword arguments of `SamAutomaticMaskGenerator` (same defaults), except
    `points_per_batch` (prompts are decoded in the runtime's fixed batch size) and
    `output_mode` (records always carry compressed RLE)."""

    def __init__(self, runtime: SamRuntime, points_per_side: int | None = 32,
                 pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95, stability_score_offset: float = 1.0,
                 box_nms_thresh: float = 0.7, crop_n_layers: int = 0,
                 crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1,
                 point_grids: list[np.ndarray] | None = None, min_mask_region_area: int = 0,
                 ) -> None:
        super().__init__(runtime.batch_size, points_per_side, point_grids, box_nms_thresh,
                         crop_n_layers, crop_nms_thresh, crop_overlap_ratio,
                         crop_n_points_downscale_factor, min_mask_region_area)
        self.runtime = runtime
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = runtime.sam.mask_threshold
        self.fast = runtime.precision.mode == "fast"
        self.side = runtime.sam.image_encoder.img_size

    def _at_working_resolution(self, input_size: tuple[int, int],
                               crop_size: tuple[int, int]) -> bool:
        """Whether masks are scored at working resolution and upsampled by region: in
        `fast`, for crops larger than the model's input. A crop up to the input's size
        (an image up to 1024 px) has no more pixels than the working resolution, and the
        region route's per-mask steps then cost more than whole masks do
        (docs/performance.md); such crops get stock's post-processing."""
        return self.fast and max(crop_size) > max(input_size)

    def _embed_crop(self, cropped: np.ndarray, crop_box: list[int],
                    orig_size: tuple[int, ...]) -> tuple[tuple, DecodeBatch]:
        crop_size = cropped.shape[:2]
        state, input_size = self.runtime.embed(cropped)
        crop = (crop_box, input_size, crop_size)
        min_iou = self._min_iou_to_upscale()

        def decode(points: np.ndarray) -> MaskData:
            low_res, iou = self.runtime.decode(state, points, crop_size, min_iou=min_iou)
            return self._filter_batch(low_res, iou, points, crop, orig_size)

        return crop, decode

    def _filter_batch(self, low_res: Tensor, iou: Tensor, points: np.ndarray, crop: tuple,
                      orig_size: tuple[int, ...]) -> MaskData:
        """Stock `_process_batch`, with the IoU filter moved before the upsampling."""
        crop_box, input_size, crop_size = crop
        data = MaskData(low_res=low_res.flatten(0, 1), iou_preds=iou.flatten(0, 1),
                        points=torch.as_tensor(points.repeat(low_res.shape[1], axis=0)))
        self._keep_passing_iou(data)
        stability, boxes = [], []
        working = self._at_working_resolution(input_size, crop_size)
        scored_size = input_size if working else crop_size
        for chunk in data["low_res"].split(chunk_size(np.prod(scored_size), _MEMORY_BUDGET)):
            logits = (working_logits(chunk, self.side, input_size) if working
                      else full_logits(chunk, self.side, input_size, crop_size))
            stability.append(calculate_stability_score(
                logits, self.mask_threshold, self.stability_score_offset))
            binary = logits > self.mask_threshold
            boxes.append(fast_boxes(logits, binary, self.mask_threshold, input_size, crop_size)
                         if working else batched_mask_to_box(binary))
        return self._scored(data, stability, boxes, crop_box, orig_size)

    def _regions(self, low_res: Tensor, input_size: tuple[int, int],
                 crop_size: tuple[int, int]) -> list[tuple[np.ndarray, int, int]]:
        """Full-size binary masks of a chunk, each as (region, top, left) in the crop."""
        if self._at_working_resolution(input_size, crop_size):
            logits = working_logits(low_res, self.side, input_size)
            boxes = working_boxes(logits > self.mask_threshold)
            return [region_mask(one, box, self.mask_threshold, crop_size)
                    for one, box in zip(logits, boxes)]
        binary = full_logits(low_res, self.side, input_size, crop_size) > self.mask_threshold
        return [trim_to_mask(one) for one in binary.cpu().numpy()]

    def _records(self, data: MaskData, crops: list, orig_size: tuple[int, ...],
                 ) -> list[MaskRecord]:
        """One record per kept mask, in `data` order: upsampled a chunk at a time and
        encoded at once, so no more than a chunk of full-size masks exists at a time."""
        records: list[MaskRecord | None] = [None] * len(data["iou_preds"])
        for crop_idx, (crop_box, input_size, crop_size) in enumerate(crops):
            idx = torch.nonzero(data["crop_idx"] == crop_idx).flatten().tolist()
            upsampled = (input_size if self._at_working_resolution(input_size, crop_size)
                         else crop_size)
            per_chunk = chunk_size(np.prod(upsampled), _MEMORY_BUDGET)
            for (chunk,) in batch_iterator(per_chunk, idx):
                checkpoint()  # a job past its deadline stops here too
                regions = self._regions(data["low_res"][chunk], input_size, crop_size)
                for i, (region, top, left) in zip(chunk, regions):
                    top, left = top + crop_box[1], left + crop_box[0]
                    records[i] = MaskRecord(
                        rle=encode_rle_region(region, top, left, orig_size),
                        area=int(region.sum()),
                        predicted_iou=data["iou_preds"][i].item(),
                        point_coords=[data["points"][i].tolist()],
                        stability_score=data["stability_score"][i].item(),
                        crop_box=box_xyxy_to_xywh(data["crop_boxes"][i]).tolist())
        return records  # type: ignore[return-value]

