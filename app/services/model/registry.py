"""Model types as data: name -> family, builder, checkpoint file, official URL, sha256
prefix. How each family loads and generates lives in `families.py`.

`sam_tiny` is a SAM-architecture model small enough for tests and offline smoke
runs (about 2 M parameters, 256-px input), built from segment_anything's own modules.
SAM 2.1 models are transformers' `Sam2Model`, loaded from Meta's own files.
"""

import importlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam

_OFFICIAL_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM1 = "segment_anything.build_sam"
_SAM2_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
# Weights trained by sam_tiny/train.py ship inside the package.
BUNDLED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def _imported(module: str, name: str) -> Callable[..., "torch.nn.Module"]:
    """A builder imported when it is called: reading this table (Settings, the Celery
    command line) must not import torch, which takes seconds."""
    def build(*args, **kwargs) -> "torch.nn.Module":
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    return build


def build_sam_tiny(checkpoint: str | None = None) -> "Sam":
    """SAM with a 6-block, 128-wide ViT encoder on 256-px input and a 128-wide decoder."""
    import torch
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    image_size, patch_size, prompt_dim = 256, 16, 128
    grid = image_size // patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=image_size,
            patch_size=patch_size,
            embed_dim=128,
            depth=6,
            num_heads=4,
            mlp_ratio=4,
            out_chans=prompt_dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=8,
            global_attn_indexes=(2, 5),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=prompt_dim, mlp_dim=512, num_heads=4
            ),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=128,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to fetch and build one model type."""

    builder: Callable[[], "torch.nn.Module"]
    checkpoint_name: str
    url: str | None  # None: no official download exists
    # "": none published (SAM 2.1): the first complete download's sha256 is recorded
    # beside the file and checked from then on (model/sha256_record.py).
    sha256_prefix: str | None
    bundled: bool = False  # the checkpoint ships inside the package
    family: str = "sam1"  # a key of families.FAMILIES
    million_parameters: float | None = None  # as the authors publish it


def _sam2(size: str, million_parameters: float) -> ModelSpec:
    name = f"sam2.1_hiera_{size}.pt"
    build_sam2 = _imported("app.services.model.sam2_weights", "build_sam2")
    return ModelSpec(partial(build_sam2, size), name, _SAM2_BASE + name, "",
                     family="sam2.1", million_parameters=million_parameters)


MODEL_REGISTRY: dict[str, ModelSpec] = {
    "vit_h": ModelSpec(_imported(_SAM1, "build_sam_vit_h"), "sam_vit_h_4b8939.pth",
                       _OFFICIAL_BASE + "sam_vit_h_4b8939.pth", "4b8939", million_parameters=636),
    "vit_l": ModelSpec(_imported(_SAM1, "build_sam_vit_l"), "sam_vit_l_0b3195.pth",
                       _OFFICIAL_BASE + "sam_vit_l_0b3195.pth", "0b3195", million_parameters=308),
    "vit_b": ModelSpec(_imported(_SAM1, "build_sam_vit_b"), "sam_vit_b_01ec64.pth",
                       _OFFICIAL_BASE + "sam_vit_b_01ec64.pth", "01ec64", million_parameters=91),
    "sam_tiny": ModelSpec(build_sam_tiny, "sam_tiny.pth", None, None, bundled=True),
    "sam2.1_hiera_tiny": _sam2("tiny", 38.9),
    "sam2.1_hiera_small": _sam2("small", 46),
    "sam2.1_hiera_base_plus": _sam2("base_plus", 80.8),
    "sam2.1_hiera_large": _sam2("large", 224.4),
}
