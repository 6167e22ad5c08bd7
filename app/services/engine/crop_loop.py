"""The loop both families' automatic generators share, in the stock generators' order:
for each crop (the whole image first, then each crop layer's tiles) the crop is
embedded and its grid of point prompts decoded a batch at a time; duplicates are
removed within each crop, then between crops (masks of smaller crops preferred); the
kept masks become records, and small regions are cleaned last.

A family supplies how a crop is embedded and a batch decoded and filtered
(`_embed_crop`), and how kept masks are upsampled into records (`_records`)."""

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch
from segment_anything.utils.amg import (MaskData, batch_iterator, build_all_layer_point_grids,
                                        generate_crop_boxes, is_box_near_crop_edge,
                                        uncrop_boxes_xyxy, uncrop_points)
from torch import Tensor
from torchvision.ops.boxes import batched_nms, box_area

from app.services.engine.interface import BatchProgress
from app.services.engine.postprocess import remove_small_regions_and_duplicates
from app.services.engine.records import MaskRecord

# Decodes one batch of point prompts (crop pixels) into the masks that pass the filters.
DecodeBatch = Callable[[np.ndarray], MaskData]


class CropLoop(ABC):
    pred_iou_thresh: float  # each family's generator sets these, with its defaults
    stability_score_thresh: float

    def __init__(self, batch_size: int, points_per_side: int | None, point_grids: list | None,
                 box_nms_thresh: float, crop_n_layers: int, crop_nms_thresh: float,
                 crop_overlap_ratio: float, crop_n_points_downscale_factor: int,
                 min_mask_region_area: int) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Exactly one of points_per_side or point_grids must be given.")
        self.batch_size = batch_size
        self.point_grids = point_grids or build_all_layer_point_grids(
            points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area

    @abstractmethod
    def _embed_crop(self, cropped: np.ndarray, crop_box: list[int],
                    orig_size: tuple[int, ...]) -> tuple[tuple, DecodeBatch]:
        """Embed one crop: its entry for `_records` and the decoder of its point batches."""

    @abstractmethod
    def _records(self, data: MaskData, crops: list[tuple], orig_size: tuple[int, ...],
                 ) -> list[MaskRecord]:
        """One record per kept mask, in `data` order."""

    @torch.inference_mode()
    def generate(self, image: np.ndarray, on_batch: BatchProgress | None = None,
                 ) -> list[MaskRecord]:
        """Masks for an HWC uint8 RGB image, one record per mask, in the stock order.
        `on_batch(done, total)` is called after each decoded batch of point prompts."""
        orig_size = image.shape[:2]
        crop_boxes, layer_idxs = generate_crop_boxes(orig_size, self.crop_n_layers,
                                                     self.crop_overlap_ratio)
        total = sum(-(-len(self.point_grids[layer]) // self.batch_size) for layer in layer_idxs)
        self._done, self._report = 0, (lambda: on_batch(self._done, total)) if on_batch else None
        data, crops = MaskData(), []
        for crop_box, layer_idx in zip(crop_boxes, layer_idxs):
            data.cat(self._crop(image, crop_box, layer_idx, crops))
        if len(crop_boxes) > 1:  # duplicates between crops: prefer masks from smaller crops
            scores = 1 / box_area(data["crop_boxes"])
            keep = batched_nms(data["boxes"].float(), scores.to(data["boxes"].device),
                               torch.zeros(len(data["boxes"])), self.crop_nms_thresh)
            data.filter(keep)
        records = self._records(data, crops, orig_size)
        if self.min_mask_region_area > 0:
            records = remove_small_regions_and_duplicates(
                records, self.min_mask_region_area,
                max(self.box_nms_thresh, self.crop_nms_thresh))
        return records

    def _min_iou_to_upscale(self, refined_first: bool = False) -> float | None:
        """What a prompt's predicted IoU must exceed for its masks to be upscaled (see
        `decoder.upscale_passing`): `_keep_passing_iou`'s threshold, or None when every
        mask is needed: no filter, or masks refined (m2m) before the filter reads them."""
        return None if refined_first or self.pred_iou_thresh <= 0.0 else self.pred_iou_thresh

    def _keep_passing_iou(self, data: MaskData) -> None:
        """The stock predicted-IoU filter (`>`, as `upscale_passing` reads it)."""
        if self.pred_iou_thresh > 0.0:
            data.filter(data["iou_preds"] > self.pred_iou_thresh)

    def _scored(self, data: MaskData, stability: list[Tensor], boxes: list[Tensor],
                crop_box: list[int], orig_size: tuple[int, ...]) -> MaskData:
        """A decoded batch's stock filters once its masks are scored: the stability
        threshold (`>=`), then masks touching a crop edge that is not the image's."""
        empty = torch.zeros(0, device=data["low_res"].device)
        data["stability_score"] = torch.cat(stability) if stability else empty
        data["boxes"] = torch.cat(boxes) if boxes else empty.view(0, 4).long()
        if self.stability_score_thresh > 0.0:
            data.filter(data["stability_score"] >= self.stability_score_thresh)
        orig_h, orig_w = orig_size
        keep = ~is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
        if not torch.all(keep):
            data.filter(keep)
        return data

    def _crop(self, image: np.ndarray, crop_box: list[int], layer_idx: int,
              crops: list[tuple]) -> MaskData:
        x0, y0, x1, y1 = crop_box
        cropped = image[y0:y1, x0:x1, :]
        crop_idx = len(crops)
        entry, decode = self._embed_crop(cropped, crop_box, image.shape[:2])
        crops.append(entry)
        points_for_image = self.point_grids[layer_idx] * np.array(cropped.shape[:2])[None, ::-1]
        data = MaskData()
        for (points,) in batch_iterator(self.batch_size, points_for_image):
            data.cat(decode(points))
            self._done += 1
            if self._report is not None:
                self._report()
        del decode  # the crop's embedding goes with it
        keep = batched_nms(data["boxes"].float(), data["iou_preds"],
                           torch.zeros(len(data["boxes"])), self.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = torch.tensor(crop_box).repeat(len(data["boxes"]), 1)  # (n, 4), n may be 0
        data["crop_idx"] = torch.full((len(data["boxes"]),), crop_idx)
        return data
