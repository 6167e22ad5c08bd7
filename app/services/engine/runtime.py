"""One SAM model prepared for automatic mask generation: image encoder and point
decoder, each compiled ahead of time into a stored package, or once per process by
torch.compile, or run eagerly (each falls back to the next), in the chosen precision,
and shared by every request's `MaskEngine`.
"""

import math
import threading
import time
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor

from app.core.logging import get_logger
from app.services.engine.aot_package import PackagedPart
from app.services.engine.attention import attend_by_head_groups, attend_fused
from app.services.engine.decoder import upscale_batch_size, upscale_passing
from app.services.engine.factored_decoder import PointMaskDecoder
from app.services.engine.precision import CompiledOrEager, PrecisionChoice

log = get_logger(__name__)


class SamRuntime:
    """Encodes images and decodes point prompts in fixed-size batches.

    Batches are padded to `batch_size` so the compiled decoder sees one shape only
    (no recompilation for the last, shorter batch). Calls are serialised: compiled
    code is built on first use, and two jobs sharing the CPU gain nothing anyway.
    With `package_dir` (the manager passes one when compiling), each part is compiled
    ahead of time into a package there, which a restart loads instead of tracing.
    The runtime owns `sam`: in `fast` it converts the image encoder to bf16 in place
    (a second copy would cost vit_b 180 MB, vit_h 1.3 GB)."""

    def __init__(self, sam: Sam, precision: PrecisionChoice, compile_model: bool,
                 batch_size: int = 32, package_dir: Path | None = None) -> None:
        self.sam = sam
        self.precision = precision
        self.batch_size = batch_size
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)
        fast = precision.mode == "fast"
        self._dtype = torch.bfloat16 if fast else torch.float32
        # exact: stock's numbers, a fraction of the memory. fast: the fused kernel.
        (attend_fused if fast else attend_by_head_groups)(sam.image_encoder)
        # fast: the image encoder holds bf16 weights and runs in bf16 throughout (under
        # autocast it spent much of its time converting between fp32 and bf16). The
        # point decoder stays fp32: factored, it is as quick in fp32 as it was in bf16
        # before, and in bf16 it flipped masks at the filters' thresholds
        # (docs/performance.md). Prompted cut-outs decode under autocast.
        sam.image_encoder.to(self._dtype)
        self._decoder = PointMaskDecoder(sam.mask_decoder)
        self._parts = [PackagedPart(CompiledOrEager(fn, name, compile_model), owner,
                                    package_dir)
                       for fn, owner, name in ((sam.image_encoder, sam.image_encoder,
                                                "image_encoder"),
                                               (self._decoder, self._decoder, "mask_decoder"),
                                               (self._decoder.factored_masks, self._decoder,
                                                "mask_upscaling"))]
        self._encode, self._decode, self._upscale = self._parts
        self.upscale_batch = upscale_batch_size(batch_size)
        self._lock = threading.Lock()
        self.warm_up_seconds: float | None = None
        self._dense_pe: Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.sam.device

    @property
    def compiled(self) -> bool:
        return all(part.is_compiled for part in self._parts)

    def _autocast(self) -> torch.autocast:
        # Autocast follows the model's device, so the same code serves CPU and CUDA.
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision.mode == "fast")

    def _fp32(self) -> torch.autocast:
        # Positional encodings map coordinates through random Fourier features: in bf16
        # (8-bit mantissa) a point moves by up to a pixel, so they stay fp32 in `fast`.
        return torch.autocast(self.device.type, enabled=False)

    def _image_pe(self) -> Tensor:
        """The dense positional encoding: it depends on the weights only, so it is
        computed once (fp32), not per image or per prompt."""
        if self._dense_pe is None:
            with torch.inference_mode(), self._fp32():
                self._dense_pe = self.sam.prompt_encoder.get_dense_pe()
        return self._dense_pe

    @torch.inference_mode()
    def embed(self, image: np.ndarray) -> tuple[tuple[Tensor, ...], tuple[int, int]]:
        """Encode an HWC uint8 RGB image exactly as `SamPredictor.set_image` does.
        Returns the decoder's per-image state and the resized input size (h, w)."""
        features, input_size = self.image_embedding(image)
        prompt = self.sam.prompt_encoder
        dense = prompt.no_mask_embed.weight.reshape(1, -1, 1, 1)
        with self._lock:
            state = self._decoder.image_state(features, dense, self._image_pe())
        return state, input_size

    @torch.inference_mode()
    def decode(self, state: tuple[Tensor, ...], points: np.ndarray,
               image_size: tuple[int, int], min_iou: float | None = None,
               ) -> tuple[Tensor, Tensor]:
        """Multimask low-res logits (n,3,h,w) and predicted IoU (n,3), fp32, for `points`
        (n,2) in pixel coordinates of an image of `image_size`; n <= batch_size.

        With `min_iou`, only prompts with a predicted IoU above it are upscaled (half
        the decoder's work); the other prompts' logits are left at zero, for a caller
        that drops every mask whose predicted IoU is not above `min_iou`."""
        n = len(points)
        padded = np.concatenate([points, np.repeat(points[-1:], self.batch_size - n, 0)])
        coords = torch.as_tensor(self.transform.apply_coords(padded, image_size),
                                 dtype=torch.float, device=self.device)[:, None, :]
        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=self.device)
        decoder = self.sam.mask_decoder
        with self._lock:
            sparse, _ = self.sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
            output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight])
            tokens = torch.cat([output_tokens.expand(len(sparse), -1, -1), sparse], dim=1)
            *per_prompt, iou = self._decode(tokens, *state)
            iou = iou[:n].float()
            image = self._decoder.upscale_inputs(state)
            low_res = upscale_passing(self._upscale, tuple(per_prompt), iou, min_iou,
                                      self.upscale_batch, 4 * math.isqrt(len(image[0])), *image)
        return low_res, iou

    @torch.inference_mode()
    def image_embedding(self, image: np.ndarray) -> tuple[Tensor, tuple[int, int]]:
        """The encoder's embedding of an HWC uint8 RGB image (as `SamPredictor.set_image`)
        and the resized input size (h, w): what prompted decoding starts from."""
        resized = self.transform.apply_image(image)
        x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with self._lock:
            features = self._encode(self.sam.preprocess(x).to(self._dtype))
        return features, (int(x.shape[-2]), int(x.shape[-1]))

    @torch.inference_mode()
    def predict(self, embedding: Tensor, points: tuple[Tensor, Tensor] | None,
                boxes: Tensor | None, multimask: bool) -> tuple[Tensor, Tensor]:
        """Stock prompt encoder (fp32) and mask decoder (runtime precision) for one
        prompt in input-frame coordinates: low-res logits (1,k,h,w), predicted IoU (1,k)."""
        with self._lock:
            sparse, dense = self.sam.prompt_encoder(points=points, boxes=boxes, masks=None)
            with self._autocast():
                low_res, iou = self.sam.mask_decoder(
                    image_embeddings=embedding, image_pe=self._image_pe(),
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                    multimask_output=multimask)
        return low_res.float(), iou.float()

    def warm_up(self) -> float:
        """Make the first request as fast as the next: load every part's stored
        package, or, if a part has none, compile (or load cached kernels) by running
        the model once on a blank image. A loaded package runs at steady speed from
        its first call, so a restart that loads all of them runs nothing."""
        started = time.monotonic()
        loaded = [part.load() for part in self._parts]
        if not all(loaded):
            side = self.sam.image_encoder.img_size
            state, _ = self.embed(np.zeros((side, side, 3), np.uint8))
            self.decode(state, np.full((1, 2), side / 2), (side, side))
        self.warm_up_seconds = round(time.monotonic() - started, 3)
        log.info("model_warmed_up", precision=self.precision.mode, compiled=self.compiled,
                 packages_loaded=sum(loaded), ran_model=not all(loaded),
                 seconds=self.warm_up_seconds)
        return self.warm_up_seconds
