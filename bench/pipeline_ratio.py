"""The whole POST /segment pipeline (decode, generate, write the result folder) timed
against its own mask-generation phase, on the benchmark's weights and image."""

import asyncio
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from segment_anything.modeling import Sam

from app.core.config import Settings
from app.schemas import JobRequest
from app.services.model.manager import ModelManager
from app.services.pipeline import segment_image


def pipeline_ratio(sam: Sam, model_type: str, image: np.ndarray, batch_size: int,
                   device: torch.device, compile_model: bool = True) -> dict[str, Any]:
    """Phase timings (ms) of one warm pipeline run with default parameters, and
    completed / masks_generated."""
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "weights.pth"
        torch.save(sam.state_dict(), checkpoint)
        settings = Settings(DEFAULT_MODEL=model_type, SAM_CHECKPOINT_PATH=checkpoint,
                            RESULTS_DIR=Path(tmp) / "results", DEVICE=device.type,
                            COMPILE_MODEL="on" if compile_model else "off",
                            DECODE_BATCH_SIZE=batch_size)
        manager = ModelManager(settings)
        manager.warm_up()
        upload = io.BytesIO()
        Image.fromarray(image).save(upload, format="PNG")
        result = asyncio.run(segment_image(JobRequest(image=upload.getvalue()), manager, settings))
        timings = result.metadata.timings_ms.model_dump()
    ratio = timings["completed"] / max(timings["masks_generated"], 1e-9)
    return {"precision": manager.precision, "timings_ms": timings,
            "objects": len(result.metadata.objects), "ratio": round(ratio, 3)}
