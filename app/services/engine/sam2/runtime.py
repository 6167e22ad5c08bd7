"""One SAM 2.1 model (transformers' `Sam2Model`) prepared for generation: the image
encoded as Meta's `SAM2ImagePredictor.set_image` does, prompts decoded in batches.

Preprocessing is Meta's, not `Sam2Processor`'s: the image goes to float first, is
resized (bilinear, antialiased) to the square input and ImageNet-normalised. The
processor's uint8 resize changes the features by about 2 % and masks by hundreds of
pixels, so it is not used.
"""

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.logging import get_logger
from app.services.engine.decoder import upscale_batch_size, upscale_passing
from app.services.engine.precision import CompiledOrEager, PrecisionChoice
from app.services.engine.sam2.decoder import Sam2PointDecoder

log = get_logger(__name__)
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Per image, shared by its point prompts: the transformer's inputs, the upscaling's.
PointState = tuple[tuple[Tensor, ...], tuple[Tensor, ...]]


@dataclass(frozen=True)
class Sam2Features:
    """One encoded image: the 64x64 embedding and the two high-resolution levels."""

    embedding: Tensor  # (1, 256, 64, 64)
    high_res: tuple[Tensor, Tensor]  # (1, 32, 256, 256), (1, 64, 128, 128)


class Sam2Runtime:
    """Encodes images and decodes prompts; calls are serialised (one model, shared)."""

    def __init__(self, model: nn.Module, precision: PrecisionChoice, batch_size: int = 32,
                 compile_model: bool = False) -> None:
        self.model = model
        self.precision = precision
        self.batch_size = batch_size
        self.side = int(model.prompt_encoder.input_image_size)
        self.warm_up_seconds: float | None = None
        self._lock = threading.Lock()
        self._image_pe: Tensor | None = None
        self._points = Sam2PointDecoder(model)
        # Only the point decoder's two parts are compiled (about 1.9x per batch here);
        # the encoder runs eagerly, as Meta's does.
        self._transformer = CompiledOrEager(self._points, "sam2_point_decoder", compile_model)
        self._upscale = CompiledOrEager(self._points.masks, "sam2_mask_upscaling", compile_model)
        self.upscale_batch = upscale_batch_size(batch_size)

    @property
    def compiled(self) -> bool:
        return self._transformer.is_compiled and self._upscale.is_compiled

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision.mode == "fast")

    def _fp32(self) -> torch.autocast:
        # Prompt coordinates pass through random Fourier features: they stay fp32.
        return torch.autocast(self.device.type, enabled=False)

    def input_tensor(self, image: np.ndarray) -> Tensor:
        """HWC uint8 RGB -> the (1, 3, side, side) normalised input Meta's predictor makes."""
        # A decoded image may be read-only; torch wants a writable array (copied if not).
        x = torch.as_tensor(np.require(image, requirements="W"), device=self.device)
        x = x.permute(2, 0, 1).float() / 255.0
        x = F.interpolate(x[None], (self.side, self.side), mode="bilinear",
                          align_corners=False, antialias=True)
        mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.inference_mode()
    def embed(self, image: np.ndarray) -> Sam2Features:
        """Encode an HWC uint8 RGB image (any size: it is resized to the square input)."""
        x = self.input_tensor(image)
        with self._lock, self._autocast():
            s0, s1, embedding = self.model.get_image_embeddings(x)
        return Sam2Features(embedding.float(), (s0.float(), s1.float()))

    def _pe(self) -> Tensor:
        if self._image_pe is None:  # depends on the weights only
            with torch.inference_mode(), self._fp32():
                self._image_pe = self.model.get_image_wide_positional_embeddings()
        return self._image_pe

    @torch.inference_mode()
    def decode(self, features: Sam2Features, coords: Tensor | None, labels: Tensor | None,
               boxes: Tensor | None, mask_input: Tensor | None, multimask: bool,
               ) -> tuple[Tensor, Tensor]:
        """B prompts at once, in input-frame coordinates: coords (B,N,2), labels (B,N),
        boxes (B,4) XYXY, mask_input (B,1,256,256) logits. Returns the low-res logits
        (B,k,256,256) and predicted IoU (B,k), fp32, unclamped; k is 3 with
        `multimask`, else 1 (Meta's stability-based choice of the single mask)."""
        b = next(t.shape[0] for t in (coords, boxes, mask_input) if t is not None)
        with self._lock:
            with self._fp32():
                sparse, dense = self.model.prompt_encoder(
                    input_points=None if coords is None else coords[:, None],
                    input_labels=None if labels is None else labels[:, None],
                    input_boxes=None if boxes is None else boxes[:, None],
                    input_masks=mask_input)
            s0, s1 = features.high_res
            with self._autocast():
                low_res, iou, _, _ = self.model.mask_decoder(
                    image_embeddings=features.embedding.expand(b, -1, -1, -1),
                    image_positional_embeddings=self._pe().expand(b, -1, -1, -1),
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                    high_resolution_features=[s0.expand(b, -1, -1, -1), s1.expand(b, -1, -1, -1)])
        return low_res[:, 0].float(), iou[:, 0].float()

    @torch.inference_mode()
    def point_state(self, features: Sam2Features) -> PointState:
        """What every single-point prompt of this image shares (see Sam2PointDecoder)."""
        dense = self.model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        with self._lock, self._autocast():
            return self._points.image_state(features.embedding, features.high_res, dense,
                                            self._pe())

    @torch.inference_mode()
    def decode_points(self, state: PointState, coords: Tensor, min_iou: float | None = None,
                      ) -> tuple[Tensor, Tensor]:
        """Multimask decode of B <= batch_size single positive points (B,2) in the input
        frame, through the rearranged decoder: low-res logits (B,3,256,256) and IoU (B,3),
        fp32. Batches are padded to batch_size: the compiled decoder sees one shape.
        With `min_iou`, only prompts with a predicted IoU above it are upscaled (see
        `upscale_passing`)."""
        n = len(coords)
        coords = torch.cat([coords, coords[-1:].expand(self.batch_size - n, -1)])
        labels = torch.ones((len(coords), 1, 1), dtype=torch.int, device=self.device)
        with self._lock:
            with self._fp32():
                sparse, _ = self.model.prompt_encoder(coords[None, :, None], labels[None, :, 0],
                                                      None, None)
                tokens = self._points.output_tokens()
                tokens = torch.cat([tokens.expand(len(coords), -1, -1), sparse[0]], dim=1)
            shared, high_res_rows = state
            with self._autocast():
                queries, keys, iou = self._transformer(tokens, *shared)
                iou = iou[:n].float()
                low_res = upscale_passing(self._upscale, (queries, keys), iou, min_iou,
                                          self.upscale_batch, 4 * math.isqrt(keys.shape[1]),
                                          *high_res_rows)
        return low_res, iou

    def to_input_frame(self, xy: np.ndarray, image_size: tuple[int, int]) -> Tensor:
        """Pixel (x, y) of an image of `image_size` (h, w) -> the square input's frame:
        x and y scale independently, as the image does."""
        h, w = image_size
        coords = torch.as_tensor(np.asarray(xy), dtype=torch.float, device=self.device).clone()
        coords[..., 0] /= w  # in float32 and in this order, as Meta's transform_coords
        coords[..., 1] /= h
        return coords * self.side

    def warm_up(self) -> float:
        """Run the encoder and the point decoder's compiled parts once on a blank image."""
        started = time.monotonic()
        features = self.embed(np.zeros((self.side, self.side, 3), np.uint8))
        self.decode_points(self.point_state(features),
                           torch.full((1, 2), self.side / 2, device=self.device))
        self.warm_up_seconds = round(time.monotonic() - started, 3)
        log.info("model_warmed_up", precision=self.precision.mode, compiled=self.compiled,
                 seconds=self.warm_up_seconds)
        return self.warm_up_seconds
