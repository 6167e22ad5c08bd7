"""Model types as data: name -> family, builder, checkpoint file, official URL, sha256
prefix. How each family loads and generates lives in `families.py`.

`sam_tiny` is a SAM-architecture model small enough for tests and offline smoke
runs (`sam_tiny_model.py`). SAM 2.1 models are transformers' `Sam2Model`, loaded from
Meta's own files.

Builders are imported when a model is built, not with the registry: settings, the CLI's
--help, a broker-mode front and `celery inspect` read the registry without importing
torch (seconds, and hundreds of MB, they do not need).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_OFFICIAL_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
# Weights trained by sam_tiny/train.py ship inside the package.
BUNDLED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def _builder(module: str, name: str) -> Callable[..., "torch.nn.Module"]:
    """`module.name`, imported on the first call."""
    def build(*args: Any, **kwargs: Any) -> "torch.nn.Module":
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    build.__name__ = name
    return build


build_sam_tiny = _builder("app.services.model.sam_tiny_model", "build_sam_tiny")
build_sam2 = _builder("app.services.model.sam2_weights", "build_sam2")
_SAM1 = "segment_anything.build_sam"


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
    return ModelSpec(partial(build_sam2, size), name, _SAM2_BASE + name, "",
                     family="sam2.1", million_parameters=million_parameters)


MODEL_REGISTRY: dict[str, ModelSpec] = {
    "vit_h": ModelSpec(_builder(_SAM1, "build_sam_vit_h"), "sam_vit_h_4b8939.pth",
                       _OFFICIAL_BASE + "sam_vit_h_4b8939.pth", "4b8939", million_parameters=636),
    "vit_l": ModelSpec(_builder(_SAM1, "build_sam_vit_l"), "sam_vit_l_0b3195.pth",
                       _OFFICIAL_BASE + "sam_vit_l_0b3195.pth", "0b3195", million_parameters=308),
    "vit_b": ModelSpec(_builder(_SAM1, "build_sam_vit_b"), "sam_vit_b_01ec64.pth",
                       _OFFICIAL_BASE + "sam_vit_b_01ec64.pth", "01ec64", million_parameters=91),
    "sam_tiny": ModelSpec(build_sam_tiny, "sam_tiny.pth", None, None, bundled=True),
    "sam2.1_hiera_tiny": _sam2("tiny", 38.9),
    "sam2.1_hiera_small": _sam2("small", 46),
    "sam2.1_hiera_base_plus": _sam2("base_plus", 80.8),
    "sam2.1_hiera_large": _sam2("large", 224.4),
}
