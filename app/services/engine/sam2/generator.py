"""Automatic mask generation with `SAM2AutomaticMaskGenerator`'s parameters, defaults
and records, on `Sam2Runtime`, with the SAM 1 engine's lessons:

- the image (each crop) is encoded once; point prompts are decoded in fixed batches;
- the predicted-IoU filter runs before any upsampling (it reads scores only);
- masks stay 256x256 logits until NMS has chosen the kept ones; stability and boxes
  are computed on full-size logits a chunk at a time, and only the kept masks are
  upsampled again, each encoded to RLE at once: memory is bounded whatever the size.
Upsampling is Meta's: one bilinear resize of the unclamped low-res logits to the crop
(after the small-region filling when `min_mask_region_area` > 0).
"""

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.amg import (
    MaskData, batch_iterator, batched_mask_to_box, box_xyxy_to_xywh,
    calculate_stability_score)
from torch import Tensor

from app.services.deadline import checkpoint
from app.services.engine.crop_loop import CropLoop, DecodeBatch
from app.services.engine.records import MaskRecord, encode_rle_region
from app.services.engine.sam2.holes import fill_holes_and_specks
from app.services.engine.sam2.runtime import Sam2Features, Sam2Runtime
from app.services.engine.upsampling import chunk_size, trim_to_mask

_MEMORY_BUDGET = 256 * 2**20  # full-size temporaries held at once, as the SAM 1 engine


class Sam2MaskEngine(CropLoop):
    """Takes `SAM2AutomaticMaskGenerator`'s keyword arguments and defaults, except
    `points_per_batch` (the runtime's batch size) and `output_mode` (records carry RLE)."""

    def __init__(self, runtime: Sam2Runtime, points_per_side: int | None = 32,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, mask_threshold: float = 0.0,
                 box_nms_thresh: float = 0.7, crop_n_layers: int = 0,
                 crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1,
                 point_grids: list[np.ndarray] | None = None, min_mask_region_area: int = 0,
                 use_m2m: bool = False, multimask_output: bool = True) -> None:
        super().__init__(runtime.batch_size, points_per_side, point_grids, box_nms_thresh,
                         crop_n_layers, crop_nms_thresh, crop_overlap_ratio,
                         crop_n_points_downscale_factor, min_mask_region_area)
        self.runtime = runtime
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    def _embed_crop(self, cropped: np.ndarray, crop_box: list[int],
                    orig_size: tuple[int, ...]) -> tuple[tuple, DecodeBatch]:
        crop_size = cropped.shape[:2]
        features = self.runtime.embed(cropped)
        # The rearranged decoder (same masks, less work) serves the multimask grid.
        state = self.runtime.point_state(features) if self.multimask_output else None

        def decode(points: np.ndarray) -> MaskData:
            return self._process_batch(features, state, points, crop_box, crop_size, orig_size)

        return (crop_box, crop_size), decode

    def _full_logits(self, low_res: Tensor, crop_size: tuple[int, int]) -> Tensor:
        """Meta's `postprocess_masks`: (n,256,256) -> (n, crop_h, crop_w) logits."""
        low_res = fill_holes_and_specks(low_res, self.mask_threshold, self.min_mask_region_area)
        return F.interpolate(low_res[:, None], crop_size, mode="bilinear",
                             align_corners=False)[:, 0]

    def _decode_points(self, features: Sam2Features, points: np.ndarray,
                       crop_size: tuple[int, int], mask_input: Tensor | None,
                       multimask: bool) -> tuple[Tensor, Tensor]:
        coords = self.runtime.to_input_frame(points, crop_size)[:, None]
        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=coords.device)
        return self.runtime.decode(features, coords, labels, None, mask_input, multimask)

    def _process_batch(self, features: Sam2Features, state, points: np.ndarray,
                       crop_box: list[int], crop_size: tuple[int, int],
                       orig_size: tuple[int, ...]) -> MaskData:
        """Meta's `_process_batch`, with the IoU filter moved before the upsampling."""
        if state is not None:
            coords = self.runtime.to_input_frame(points, crop_size)
            low_res, iou = self.runtime.decode_points(state, coords,
                                                      self._min_iou_to_upscale(self.use_m2m))
        else:
            low_res, iou = self._decode_points(features, points, crop_size, None, False)
        k = low_res.shape[1]
        data = MaskData(low_res=low_res.flatten(0, 1), iou_preds=iou.flatten(0, 1),
                        points=torch.as_tensor(points.repeat(k, axis=0)))
        if self.use_m2m:  # one more decode per mask, its own low-res logits as the prompt
            refined, scores = [], []
            for (pts, masks) in batch_iterator(self.runtime.batch_size,
                                               data["points"].numpy(), data["low_res"]):
                one, score = self._decode_points(features, pts, crop_size,
                                                 masks.clamp(-32.0, 32.0)[:, None], False)
                refined.append(one[:, 0])
                scores.append(score[:, 0])
            data["low_res"], data["iou_preds"] = torch.cat(refined), torch.cat(scores)
        self._keep_passing_iou(data)
        stability, boxes = [], []
        for chunk in data["low_res"].split(chunk_size(np.prod(crop_size), _MEMORY_BUDGET)):
            logits = self._full_logits(chunk, crop_size)
            stability.append(calculate_stability_score(logits, self.mask_threshold,
                                                       self.stability_score_offset))
            boxes.append(batched_mask_to_box(logits > self.mask_threshold))
        return self._scored(data, stability, boxes, crop_box, orig_size)

    def _records(self, data: MaskData, crops: list, orig_size: tuple[int, ...],
                 ) -> list[MaskRecord]:
        """One record per kept mask, in `data` order, upsampled a chunk at a time."""
        records: list[MaskRecord | None] = [None] * len(data["iou_preds"])
        for crop_idx, (crop_box, crop_size) in enumerate(crops):
            idx = torch.nonzero(data["crop_idx"] == crop_idx).flatten().tolist()
            for (chunk,) in batch_iterator(chunk_size(np.prod(crop_size), _MEMORY_BUDGET), idx):
                checkpoint()  # a job past its deadline stops here too
                binary = self._full_logits(data["low_res"][chunk], crop_size) > self.mask_threshold
                for i, one in zip(chunk, binary.cpu().numpy()):
                    region, top, left = trim_to_mask(one)
                    records[i] = MaskRecord(
                        rle=encode_rle_region(region, top + crop_box[1], left + crop_box[0],
                                              orig_size),
                        area=int(region.sum()),
                        predicted_iou=data["iou_preds"][i].item(),
                        point_coords=[data["points"][i].tolist()],
                        stability_score=data["stability_score"][i].item(),
                        crop_box=box_xyxy_to_xywh(data["crop_boxes"][i]).tolist())
        return records  # type: ignore[return-value]
