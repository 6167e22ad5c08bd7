"""From the decoder's low-res logits to masks at the model's working resolution and at
the image's full resolution, in chunks whose memory does not grow with the image.

`Sam.postprocess_masks` resizes twice: low-res (256) -> working resolution (the padded
1024 input, unpadded to `input_size`) -> the crop's full size. The first step costs the
same for any photo; the second grows with megapixels. `exact` runs both on whole masks,
as stock does. `fast` keeps the second one to the region a mask can occupy:
bilinear interpolation is a convex combination of four working pixels, so a
full-size pixel is in the mask only if one of those four is; outside the
working-resolution box (plus one pixel) nothing needs computing.
"""

import math

import numpy as np
import torch
from segment_anything.utils.amg import batched_mask_to_box
from torch import Tensor
from torch.nn import functional as F

# Bytes of temporaries per full-size pixel of one mask while upsampling, scoring and
# thresholding it (float logits, comparison masks, the uint8 copy for RLE).
_BYTES_PER_PIXEL = 12
_MAX_CHUNK = 32


def chunk_size(pixels: int, budget_bytes: int) -> int:
    """How many masks of `pixels` pixels to process at once within `budget_bytes`."""
    return int(max(1, min(_MAX_CHUNK, budget_bytes // (_BYTES_PER_PIXEL * max(int(pixels), 1)))))


def working_logits(low_res: Tensor, side: int, input_size: tuple[int, int]) -> Tensor:
    """(n,h,w) low-res logits -> (n, input_h, input_w): the first half of
    `Sam.postprocess_masks` (to the padded input size, then unpadded)."""
    masks = F.interpolate(low_res[:, None], (side, side), mode="bilinear", align_corners=False)
    return masks[:, 0, : input_size[0], : input_size[1]]


def full_logits(low_res: Tensor, side: int, input_size: tuple[int, int],
                crop_size: tuple[int, int]) -> Tensor:
    """All of `Sam.postprocess_masks`: (n,h,w) -> (n, crop_h, crop_w). The second resize
    is skipped when it maps a size to itself (bilinear would copy every value)."""
    masks = working_logits(low_res, side, input_size)
    if tuple(masks.shape[-2:]) != tuple(crop_size):
        masks = F.interpolate(masks[:, None], crop_size, mode="bilinear",
                              align_corners=False)[:, 0]
    return masks


def _source(out_range: range, in_size: int, out_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """PyTorch's bilinear (align_corners=False) sampling for the output indices in
    `out_range`: first source index, second source index, weight of the second."""
    scale = in_size / out_size
    src = ((torch.arange(out_range.start, out_range.stop, dtype=torch.float64) + 0.5)
           * scale - 0.5).clamp(min=0)
    first = src.floor().long().clamp(max=in_size - 1)
    return first, (first + 1).clamp(max=in_size - 1), (src - first).float()


def _out_range(lo: int, hi: int, in_size: int, out_size: int) -> range:
    """Output indices whose bilinear source lies strictly within (lo - 1, hi + 1)."""
    scale = in_size / out_size
    start = max(0, math.floor((lo - 0.5) / scale - 0.5))
    stop = min(out_size, math.ceil((hi + 1.5) / scale - 0.5) + 1)
    return range(start, max(start, stop))


def region_mask(working: Tensor, box: list[int], threshold: float,
                crop_size: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """The full-size binary mask of one mask's working-resolution logits (h, w), whose
    working mask has the XYXY `box` (None: empty), as the region that can hold it:
    (region bool array, top row, left column) in crop coordinates. Equals
    thresholding `full_logits` up to float rounding."""
    if box is None:
        return np.zeros((0, 0), bool), 0, 0
    x0, y0, x1, y1 = box
    if tuple(working.shape) == tuple(crop_size):  # no second resize: already full size
        window = (working[y0: y1 + 1, x0: x1 + 1] > threshold).cpu().numpy()
        return trim_to_mask(window, y0, x0)
    (in_h, in_w), (out_h, out_w) = working.shape, crop_size
    out_rows, out_cols = _out_range(y0, y1, in_h, out_h), _out_range(x0, x1, in_w, out_w)
    if not out_rows or not out_cols:  # shrinking: no output pixel samples the mask
        return np.zeros((0, 0), bool), 0, 0
    r0, r1, wr = _source(out_rows, in_h, out_h)
    c0, c1, wc = _source(out_cols, in_w, out_w)
    # Rows first, on the few source columns needed; then columns, out to full size.
    first, last = int(c0[0]), int(c1[-1]) + 1
    rows = torch.lerp(working[r0, first:last], working[r1, first:last], wr[:, None])
    values = torch.lerp(rows[:, c0 - first], rows[:, c1 - first], wc)
    return trim_to_mask((values > threshold).cpu().numpy(), out_rows.start, out_cols.start)


def working_boxes(binary: Tensor) -> list[list[int] | None]:
    """XYXY box of each (n,h,w) binary mask, None for an empty one."""
    boxes = batched_mask_to_box(binary).tolist()
    nonempty = binary.flatten(1).any(1).tolist()
    return [box if any_ else None for box, any_ in zip(boxes, nonempty)]


def trim_to_mask(region: np.ndarray, top: int = 0, left: int = 0,
                 ) -> tuple[np.ndarray, int, int]:
    """The region cut to its mask's bounding box (empty masks: a 0 x 0 region)."""
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    if len(rows) == 0:
        return np.zeros((0, 0), bool), 0, 0
    return (region[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1],
            top + int(rows[0]), left + int(cols[0]))


def scale_boxes(boxes: Tensor, input_size: tuple[int, int],
                crop_size: tuple[int, int]) -> Tensor:
    """XYXY boxes (inclusive pixel indices) at working resolution -> crop pixels."""
    sy, sx = crop_size[0] / input_size[0], crop_size[1] / input_size[1]
    if (sy, sx) == (1.0, 1.0):
        return boxes
    scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float64, device=boxes.device)
    first = (boxes[:, :2].double() * scale[:2]).floor()
    last = ((boxes[:, 2:].double() + 1) * scale[2:]).ceil() - 1
    return torch.cat([first, last], 1).long()


# Working-resolution masks this small get the box of their actual full-size mask.
_FEW_PIXELS = 16


def fast_boxes(logits: Tensor, binary: Tensor, threshold: float, input_size: tuple[int, int],
               crop_size: tuple[int, int]) -> Tensor:
    """Boxes in crop pixels from working-resolution masks. A mask of a few working
    pixels may vanish at full size (interpolation lowers an isolated peak), and
    stock keeps empty masks through NMS (their box IoU is undefined) but not tiny
    ones, so such masks get the box of their actual full-size mask (cheap: tiny)."""
    boxes = scale_boxes(batched_mask_to_box(binary), input_size, crop_size)
    for j in torch.nonzero(binary.flatten(1).sum(1) <= _FEW_PIXELS).flatten().tolist():
        box = working_boxes(binary[j: j + 1])[0]
        region, top, left = region_mask(logits[j], box, threshold, crop_size)
        # stock's XYXY convention for NMS: the last row and column, inclusive
        bottom, right = top + max(region.shape[0] - 1, 0), left + max(region.shape[1] - 1, 0)
        boxes[j] = torch.tensor([left, top, right, bottom] if region.size else [0, 0, 0, 0])
    return boxes
