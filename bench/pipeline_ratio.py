"""The whole POST /segment pipeline (decode, generate, write the result folder) timed
against its own mask-generation phase, on the benchmark's weights and image."""

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.schemas import JobRequest
from app.services.pipeline import run_job
from bench.bench_models import bench_manager


def pipeline_ratio(model_type: str, checkpoint: Path, image: np.ndarray, batch_size: int,
                   device: str, compile_model: bool, cache: Path) -> dict[str, Any]:
    """Phase timings (ms) of one warm pipeline run with default parameters, and
    completed / masks_generated."""
    manager = bench_manager(model_type, checkpoint, device, "auto", compile_model, cache,
                            batch_size, warm_up=True)
    upload = io.BytesIO()
    Image.fromarray(image).save(upload, format="PNG")
    with tempfile.TemporaryDirectory() as tmp:
        settings = manager.settings.model_copy(update={"RESULTS_DIR": Path(tmp)})
        result = run_job(JobRequest(image=upload.getvalue()), manager, settings)
    timings = result.metadata.timings_ms.model_dump()
    ratio = timings["completed"] / max(timings["masks_generated"], 1e-9)
    return {"precision": manager.precision, "timings_ms": timings,
            "objects": len(result.metadata.objects), "ratio": round(ratio, 3)}
