"""Prompted generation: one object per prompt, as `SamPredictor.predict` makes it, on
the same `SamRuntime` (same loaded model, precision and lock) as automatic generation.

One image encoding, then one decoder call per prompt. A single point is ambiguous
(part, object or group?), so it decodes SAM's three multimask outputs and keeps the
one with the highest predicted IoU, as SAM's authors advise; any other prompt
decodes one mask.
"""

import numpy as np
import torch
from segment_anything.utils.amg import calculate_stability_score

from app.schemas.prompts import Prompt
from app.services.engine.records import MaskRecord, encode_rle
from app.services.engine.runtime import SamRuntime


class PromptedEngine:
    """Takes `stability_score_offset` (as the automatic generator does, for the score
    recorded with each object); the other generator arguments do not apply."""

    def __init__(self, runtime: SamRuntime, stability_score_offset: float = 1.0, **_unused) -> None:
        self.runtime = runtime
        self.stability_score_offset = stability_score_offset

    @torch.inference_mode()
    def generate(self, image: np.ndarray, prompts: list[Prompt], on_batch=None,
                 ) -> list[MaskRecord]:
        """One record per prompt, in prompt order, for an HWC uint8 RGB image.
        `on_batch(done, total)` is called after each decoded prompt."""
        orig_size = image.shape[:2]
        embedding, input_size = self.runtime.image_embedding(image)
        records = []
        for done, prompt in enumerate(prompts, 1):
            records.append(self._one(embedding, prompt, input_size, orig_size))
            if on_batch is not None:
                on_batch(done, len(prompts))
        return records

    def _one(self, embedding: torch.Tensor, prompt: Prompt, input_size: tuple[int, int],
             orig_size: tuple[int, int]) -> MaskRecord:
        runtime, device = self.runtime, self.runtime.device
        points = boxes = None
        if prompt.points:
            coords = runtime.transform.apply_coords(np.array(prompt.points, dtype=float), orig_size)
            points = (torch.as_tensor(coords, dtype=torch.float, device=device)[None],
                      torch.as_tensor(prompt.labels, dtype=torch.int, device=device)[None])
        if prompt.box is not None:
            box = runtime.transform.apply_boxes(np.array(prompt.box, dtype=float), orig_size)
            boxes = torch.as_tensor(box, dtype=torch.float, device=device)
        multimask = len(prompt.points) == 1 and prompt.box is None
        low_res, iou = runtime.predict(embedding, points, boxes, multimask)
        best = int(iou[0].argmax())
        logits = runtime.sam.postprocess_masks(low_res[:, best:best + 1], input_size, orig_size)[0]
        threshold = runtime.sam.mask_threshold
        mask = logits[0] > threshold
        stability = calculate_stability_score(logits, threshold, self.stability_score_offset)
        height, width = orig_size
        return MaskRecord(
            rle=encode_rle(mask.cpu().numpy()), area=int(mask.sum()),
            predicted_iou=float(iou[0, best]), stability_score=float(stability[0]),
            point_coords=[list(p) for p in prompt.points], crop_box=[0, 0, width, height])
