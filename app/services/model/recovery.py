"""Run the mask generator with the recoveries a long-running server needs.

- CUDA out-of-memory: unload the model, free the cache, reload, retry once.
- Any other error torch raises (RuntimeError and its kinds): rebuild the model from
  its cached weights (its state may be corrupt) and retry once.
Every retry is recorded so metadata.json can show what happened. Other exceptions
(TypeError, KeyError ...) are bugs in our own code: a reload would not fix them, so
they propagate at once.
"""

from typing import Any

import numpy as np
import torch

from app.core.errors import JobAbandoned, SegmentationFailed, ServiceError
from app.core.logging import get_logger
from app.schemas import Retry
from app.schemas.prompts import Prompt
from app.services.engine.interface import BatchProgress
from app.services.engine.records import MaskRecord
from app.services.model.manager import ModelManager

log = get_logger(__name__)


def generate_masks(manager: ModelManager, image: np.ndarray, params: dict[str, Any],
                   simulate_oom: bool = False, on_batch: BatchProgress | None = None,
                   prompts: list[Prompt] | None = None) -> tuple[list[MaskRecord], list[Retry]]:
    """The generated masks, and the retries it took: every object (automatic), or one
    per prompt, in order, when `prompts` is given. `on_batch(done, total)` follows
    the decoded batches of point prompts."""
    retries: list[Retry] = []
    for attempt in (1, 2):
        try:
            generator = (manager.generator(**params) if prompts is None
                         else manager.prompted_generator(**params))
            if simulate_oom and attempt == 1:
                raise torch.cuda.OutOfMemoryError("simulated CUDA out of memory (SIMULATE_CUDA_OOM=1)")
            if prompts is None:
                return generator.generate(image, on_batch), retries
            return generator.generate(image, prompts, on_batch), retries
        except (ServiceError, JobAbandoned):
            raise  # not the predictor's fault: a failed load, a cancelled job
        except torch.cuda.OutOfMemoryError as exc:
            reason, error = "cuda_out_of_memory", exc
        except RuntimeError as exc:  # torch's errors: the model's state may be corrupt
            reason, error = "predictor_error", exc
        if attempt == 2:
            raise SegmentationFailed(
                f"Mask generation failed after a retry: {error}",
                {"reason": reason, "retries": [r.model_dump() for r in retries]},
            ) from error
        retries.append(Retry(attempt=attempt, reason=reason, error=str(error)))
        log.warning("generation_retry", reason=reason, error=str(error))
        manager.unload()  # frees CUDA memory; the next generator() reloads from the checkpoint
    raise AssertionError("unreachable")
