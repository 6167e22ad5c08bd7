"""Prompted generation on SAM 2.1 with `SAM2ImagePredictor.predict`'s semantics: one
encoding, one decode per prompt; a lone point decodes three candidates and keeps the
one with the highest predicted IoU, any other prompt one mask (Meta's decoder then
picks by stability). Masks are upsampled as Meta does (one bilinear resize)."""

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.amg import calculate_stability_score

from app.schemas.prompts import Prompt
from app.services.engine.records import MaskRecord, encode_rle
from app.services.engine.sam2.runtime import Sam2Features, Sam2Runtime


class Sam2PromptedEngine:
    """Takes `stability_score_offset` (for the score recorded with each object) and
    `mask_threshold` (the predictor's); grid parameters do not apply."""

    def __init__(self, runtime: Sam2Runtime, stability_score_offset: float = 1.0,
                 mask_threshold: float = 0.0) -> None:
        self.runtime = runtime
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold

    @torch.inference_mode()
    def generate(self, image: np.ndarray, prompts: list[Prompt], on_batch=None,
                 ) -> list[MaskRecord]:
        """One record per prompt, in prompt order, for an HWC uint8 RGB image."""
        features = self.runtime.embed(image)
        records = []
        for done, prompt in enumerate(prompts, 1):
            records.append(self._one(features, prompt, image.shape[:2]))
            if on_batch is not None:
                on_batch(done, len(prompts))
        return records

    def _one(self, features: Sam2Features, prompt: Prompt,
             orig_size: tuple[int, int]) -> MaskRecord:
        runtime = self.runtime
        coords = labels = box = None
        if prompt.points:
            coords = runtime.to_input_frame(np.array(prompt.points, dtype=np.float32), orig_size)[None]
            labels = torch.as_tensor(prompt.labels, dtype=torch.int, device=runtime.device)[None]
        if prompt.box is not None:
            corners = np.array(prompt.box, dtype=np.float32).reshape(2, 2)
            box = runtime.to_input_frame(corners, orig_size).reshape(1, 4)
        multimask = len(prompt.points) == 1 and prompt.box is None
        low_res, iou = runtime.decode(features, coords, labels, box, None, multimask)
        best = int(iou[0].argmax())
        logits = F.interpolate(low_res[:, best:best + 1], orig_size, mode="bilinear",
                               align_corners=False)[0]
        mask = logits[0] > self.mask_threshold
        stability = calculate_stability_score(logits, self.mask_threshold,
                                              self.stability_score_offset)
        height, width = orig_size
        return MaskRecord(
            rle=encode_rle(mask.cpu().numpy()), area=int(mask.sum()),
            predicted_iou=float(iou[0, best]), stability_score=float(stability[0]),
            point_coords=[list(p) for p in prompt.points], crop_box=[0, 0, width, height])
