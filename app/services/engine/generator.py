"""Automatic mask generation with the records of `SamAutomaticMaskGenerator.generate`,
faster: the same grid of point prompts, filters, NMS and record fields, but

- prompts are decoded by `SamRuntime` (rearranged decoder, compiled, fixed batches);
- the predicted-IoU filter runs on the low-resolution logits, so only the masks that
  pass it are upsampled (the filter never looked at the upsampled masks);
- masks stay low-resolution tensors until NMS has chosen the kept ones, instead of
  being upsampled, run-length encoded and decoded again; kept masks are upsampled
  once more with the very same operations, so they are bit-identical.
The stability score is still computed on the full-size logits, as stock does.
"""

from collections.abc import Callable

import numpy as np
import torch
from segment_anything.utils.amg import (
    MaskData, batch_iterator, batched_mask_to_box, box_xyxy_to_xywh,
    build_all_layer_point_grids, calculate_stability_score, generate_crop_boxes,
    is_box_near_crop_edge, uncrop_boxes_xyxy, uncrop_masks, uncrop_points)
from torch import Tensor
from torch.nn import functional as F
from torchvision.ops.boxes import batched_nms, box_area

from app.services.engine.postprocess import remove_small_regions_and_duplicates
from app.services.engine.records import MaskRecord, encode_rle
from app.services.engine.runtime import SamRuntime

_UPSAMPLE_CHUNK = 32  # full-size float logits are large: upsample this many at a time
BatchProgress = Callable[[int, int], None]


class _BatchCounter:
    """Counts decoded batches and reports them as (done, total)."""

    def __init__(self, total: int, report: BatchProgress | None) -> None:
        self.done, self.total, self.report = 0, total, report

    def advance(self) -> None:
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)


class MaskEngine:
    """Takes the keyword arguments of `SamAutomaticMaskGenerator` (same defaults), except
    `points_per_batch` (prompts are decoded in the runtime's fixed batch size) and
    `output_mode` (records always carry binary masks)."""

    def __init__(self, runtime: SamRuntime, points_per_side: int | None = 32,
                 pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95, stability_score_offset: float = 1.0,
                 box_nms_thresh: float = 0.7, crop_n_layers: int = 0,
                 crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1,
                 point_grids: list[np.ndarray] | None = None, min_mask_region_area: int = 0,
                 ) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Exactly one of points_per_side or point_grids must be given.")
        self.runtime = runtime
        self.point_grids = point_grids or build_all_layer_point_grids(
            points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.mask_threshold = runtime.sam.mask_threshold

    @torch.inference_mode()
    def generate(self, image: np.ndarray, on_batch: BatchProgress | None = None,
                 ) -> list[MaskRecord]:
        """Masks for an HWC uint8 RGB image, one record per mask, in stock order.
        `on_batch(done, total)` is called after each decoded batch of point prompts."""
        orig_size = image.shape[:2]
        crop_boxes, layer_idxs = generate_crop_boxes(
            orig_size, self.crop_n_layers, self.crop_overlap_ratio)
        batches = sum(-(-len(self.point_grids[layer]) // self.runtime.batch_size) for layer in layer_idxs)
        self._progress = _BatchCounter(batches, on_batch)
        data, crops = MaskData(), []
        for crop_box, layer_idx in zip(crop_boxes, layer_idxs):
            data.cat(self._process_crop(image, crop_box, layer_idx, len(crops), crops))
        if len(crop_boxes) > 1:  # duplicates between crops: prefer masks from smaller crops
            scores = 1 / box_area(data["crop_boxes"])
            keep = batched_nms(data["boxes"].float(), scores.to(data["boxes"].device),
                               torch.zeros(len(data["boxes"])), self.crop_nms_thresh)
            data.filter(keep)
        masks = self._full_masks(data, crops, orig_size)
        del data["low_res"]
        data.to_numpy()
        if self.min_mask_region_area > 0:
            masks = remove_small_regions_and_duplicates(
                data, masks, self.min_mask_region_area,
                max(self.box_nms_thresh, self.crop_nms_thresh))
        return self._records(data, masks)

    def _process_crop(self, image: np.ndarray, crop_box: list[int], layer_idx: int,
                      crop_idx: int, crops: list) -> MaskData:
        x0, y0, x1, y1 = crop_box
        cropped = image[y0:y1, x0:x1, :]
        crop_size = cropped.shape[:2]
        state, input_size = self.runtime.embed(cropped)
        crops.append((crop_box, input_size, crop_size))
        points_for_image = self.point_grids[layer_idx] * np.array(crop_size)[None, ::-1]
        data = MaskData()
        for (points,) in batch_iterator(self.runtime.batch_size, points_for_image):
            low_res, iou = self.runtime.decode(state, points, crop_size)
            data.cat(self._filter_batch(low_res, iou, points, crops[-1], image.shape[:2]))
            self._progress.advance()
        del state
        keep = batched_nms(data["boxes"].float(), data["iou_preds"],
                           torch.zeros(len(data["boxes"])), self.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = torch.tensor([crop_box for _ in range(len(data["boxes"]))])
        data["crop_idx"] = torch.full((len(data["boxes"]),), crop_idx)
        return data

    def _filter_batch(self, low_res: Tensor, iou: Tensor, points: np.ndarray, crop: tuple,
                      orig_size: tuple[int, ...]) -> MaskData:
        """Stock `_process_batch`, with the IoU filter moved before the upsampling."""
        crop_box, input_size, crop_size = crop
        data = MaskData(low_res=low_res.flatten(0, 1), iou_preds=iou.flatten(0, 1),
                        points=torch.as_tensor(points.repeat(low_res.shape[1], axis=0)))
        if self.pred_iou_thresh > 0.0:
            data.filter(data["iou_preds"] > self.pred_iou_thresh)
        stability, boxes = [], []
        for chunk in data["low_res"].split(_UPSAMPLE_CHUNK):
            logits = self._upsample(chunk, input_size, crop_size)
            stability.append(calculate_stability_score(
                logits, self.mask_threshold, self.stability_score_offset))
            boxes.append(batched_mask_to_box(logits > self.mask_threshold))
        empty = torch.zeros(0, device=low_res.device)
        data["stability_score"] = torch.cat(stability) if stability else empty
        data["boxes"] = torch.cat(boxes) if boxes else empty.view(0, 4).long()
        if self.stability_score_thresh > 0.0:
            data.filter(data["stability_score"] >= self.stability_score_thresh)
        orig_h, orig_w = orig_size
        keep = ~is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
        if not torch.all(keep):
            data.filter(keep)
        return data

    def _upsample(self, low_res: Tensor, input_size: tuple[int, int],
                  crop_size: tuple[int, int]) -> Tensor:
        """`Sam.postprocess_masks` for (n,h,w) logits: to the padded input size, unpad,
        then to the crop's size. The second resize is skipped when it would be
        identity (same size: bilinear then copies every value exactly)."""
        side = self.runtime.sam.image_encoder.img_size
        masks = F.interpolate(low_res[:, None], (side, side), mode="bilinear",
                              align_corners=False)
        masks = masks[..., : input_size[0], : input_size[1]]
        if tuple(masks.shape[-2:]) != tuple(crop_size):
            masks = F.interpolate(masks, crop_size, mode="bilinear", align_corners=False)
        return masks[:, 0]

    def _full_masks(self, data: MaskData, crops: list, orig_size: tuple[int, ...]) -> list:
        """Binary full-image masks (numpy, HxW) for the masks that survived NMS."""
        masks: list[np.ndarray] = [None] * len(data["iou_preds"])  # type: ignore[list-item]
        for crop_idx, (crop_box, input_size, crop_size) in enumerate(crops):
            idx = torch.nonzero(data["crop_idx"] == crop_idx).flatten().tolist()
            for chunk in batch_iterator(_UPSAMPLE_CHUNK, idx):
                logits = self._upsample(data["low_res"][chunk[0]], input_size, crop_size)
                binary = uncrop_masks(logits > self.mask_threshold, crop_box, *orig_size)
                for i, mask in zip(chunk[0], binary.cpu().numpy()):
                    masks[i] = mask
        return masks

    @staticmethod
    def _records(data: MaskData, masks: list[np.ndarray]) -> list[MaskRecord]:
        return [MaskRecord(
            rle=encode_rle(masks[i]),
            area=int(masks[i].sum()),
            bbox=box_xyxy_to_xywh(data["boxes"][i]).tolist(),
            predicted_iou=data["iou_preds"][i].item(),
            point_coords=[data["points"][i].tolist()],
            stability_score=data["stability_score"][i].item(),
            crop_box=box_xyxy_to_xywh(data["crop_boxes"][i]).tolist(),
        ) for i in range(len(masks))]
