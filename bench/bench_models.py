"""How the benchmark gets its model: through the service's own start-up,
`prepare_model(settings)`, never by loading weights or choosing a device itself.
Random weights are written, seeded, to a checkpoint that Settings points at."""

import asyncio
from pathlib import Path

import torch

from app.core.config import Settings
from app.services.model.bootstrap import prepare_model
from app.services.model.manager import ModelManager
from app.services.model.registry import MODEL_REGISTRY

REPO = Path(__file__).resolve().parent.parent
TRAINED_SAM_TINY = REPO / "app" / "weights" / "sam_tiny.pth"


def meta_sam2_config(model_type: str) -> str:
    """Meta's Hydra config of a SAM 2.1 registry name (sam2.1_hiera_tiny -> ..._t.yaml)."""
    short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
    return f"configs/sam2.1/sam2.1_hiera_{short[model_type.removeprefix('sam2.1_hiera_')]}.yaml"


def seeded_checkpoint(model_type: str, seed: int, folder: Path) -> Path:
    """Random weights for `model_type` (torch seed `seed`) in the format its official
    checkpoint has, saved under `folder` once. SAM 2.1's are made by Meta's own code
    (the test-only `sam2` package, `make install-dev`), as Meta publishes them."""
    path = folder / f"{model_type}_seed{seed}.pt"
    if not path.is_file():
        torch.manual_seed(seed)
        folder.mkdir(parents=True, exist_ok=True)
        if MODEL_REGISTRY[model_type].family == "sam2.1":
            from sam2.build_sam import build_sam2

            state = {"model": build_sam2(meta_sam2_config(model_type), None,
                                         device="cpu").state_dict()}
        else:
            state = MODEL_REGISTRY[model_type].builder().state_dict()
        torch.save(state, path)
    return path


def bench_manager(model_type: str, checkpoint: Path, device: str, precision: str,
                  compile_model: bool, cache_dir: Path, batch_size: int,
                  warm_up: bool = False) -> ModelManager:
    """A ModelManager made ready by the service's start-up sequence."""
    settings = Settings(DEFAULT_MODEL=model_type, SAM_CHECKPOINT_PATH=checkpoint,
                        DEVICE=device, PRECISION=precision, OFFLINE=True,
                        COMPILE_MODEL="on" if compile_model else "off",
                        MODEL_CACHE_DIR=cache_dir, DECODE_BATCH_SIZE=batch_size,
                        RESULTS_DIR=cache_dir / "results")
    return asyncio.run(prepare_model(settings, warm_up=warm_up))
