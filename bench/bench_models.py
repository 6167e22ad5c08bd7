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


def seeded_checkpoint(model_type: str, seed: int, folder: Path) -> Path:
    """Random weights for `model_type` (torch seed `seed`), saved under `folder` once."""
    path = folder / f"{model_type}_seed{seed}.pth"
    if not path.is_file():
        torch.manual_seed(seed)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(MODEL_REGISTRY[model_type].builder().state_dict(), path)
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
