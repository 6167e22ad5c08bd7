"""The segmentation pipeline, phase by phase:

received -> preprocessed -> model_loaded -> masks_generated -> objects_saved -> completed

Each phase is logged with its duration and counts and recorded in metadata.json.
The whole pipeline is blocking; `segment_image` runs it in a worker thread.
"""

import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.core.errors import ServiceError
from app.core.logging import bind_job, get_logger, set_phase
from app.schemas import GenerationParams
from app.services.image_processor import DecodedImage, validate_image
from app.services.job_queue import JobAbandoned, JobQueue
from app.services.mask_generation import generate_masks
from app.services.metrics import jobs_in_flight, observe_phases
from app.services.model_manager import ModelManager
from app.services.object_extractor import ObjectExtractor
from app.services.result_writer import write_job_folder

log = get_logger(__name__)


@dataclass
class JobResult:
    job_id: str
    output_dir: Path
    metadata: dict[str, Any]
    timings: dict[str, float]  # ms per phase; "completed" is the total


@dataclass
class _Job:
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    phase_begun: float = 0.0

    @contextmanager
    def phase(self, name: str):
        set_phase(name)
        self.phase_begun = time.perf_counter()
        try:
            yield
        except ServiceError as exc:
            exc.phase = name  # the error handler logs where the job failed
            raise
        self.timings[name] = self.ms_since(self.phase_begun)

    @staticmethod
    def ms_since(begun: float) -> float:
        return round((time.perf_counter() - begun) * 1000, 1)

    def folder_name(self) -> str:
        return f"{self.created.strftime('%Y%m%dT%H%M%SZ')}_{self.id}"


async def segment_image(data: bytes, params: GenerationParams, manager: ModelManager,
                        settings: Settings, file_name: str = "image.png",
                        jobs: JobQueue | None = None, is_disconnected=None) -> JobResult:
    """Segment one uploaded image; the one place the blocking work leaves the event loop.
    `file_name` is the client's name for the image, recorded for annotations.json.
    `jobs` bounds concurrency, queue and run time (see job_queue); `is_disconnected`
    lets a queued job be dropped when its client leaves."""
    job = _Job()
    bind_job(job.id)  # bound here, so the request's error log line carries it too
    log.info("received", bytes=len(data))
    with jobs_in_flight():
        work = partial(_run_pipeline, job, data, params, manager, settings, file_name)
        return await (jobs or JobQueue(1, 0, None)).run(work, _discard, is_disconnected)


def _discard(result: JobResult) -> None:
    """Remove the folder of a job whose client will never receive it (timeout, shutdown)."""
    shutil.rmtree(result.output_dir, ignore_errors=True)
    log.warning("result_discarded", job_id=result.job_id, output_dir=str(result.output_dir))


def _stop_if_abandoned(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise JobAbandoned()


def _run_pipeline(job: _Job, data: bytes, params: GenerationParams, manager: ModelManager,
                  settings: Settings, file_name: str, cancel: threading.Event) -> JobResult:
    job.timings["received"] = job.ms_since(job.started)
    with job.phase("preprocessed"):
        image = validate_image(data, settings.max_image_bytes, settings.MAX_IMAGE_PIXELS)
    log.info("preprocessed", width=image.width, height=image.height, format=image.format,
             ms=job.timings["preprocessed"])
    with job.phase("model_loaded"):
        manager.model()
    log.info("model_loaded", model_type=manager.model_type, device=manager.device,
             ms=job.timings["model_loaded"])
    _stop_if_abandoned(cancel)
    with job.phase("masks_generated"):
        records, retries = generate_masks(manager, image.rgb, params.generator_kwargs(),
                                          simulate_oom=settings.SIMULATE_CUDA_OOM)
    log.info("masks_generated", count=len(records), retries=len(retries),
             ms=job.timings["masks_generated"])
    _stop_if_abandoned(cancel)

    min_pixels = settings.MIN_OBJECT_PIXELS if params.min_object_pixels is None else params.min_object_pixels
    extractor = ObjectExtractor(min_pixels)
    records.sort(key=lambda r: r["area"], reverse=True)
    kept = [r for r in records if extractor.keeps(r["segmentation"])]
    skipped = [{"area": int(r["area"]), "reason": "smaller_than_min_object_pixels"}
               for r in records if not extractor.keeps(r["segmentation"])]
    # MAX_OBJECTS bounds the disk one busy image can fill: the largest are kept.
    kept, cut = kept[:settings.MAX_OBJECTS], kept[settings.MAX_OBJECTS:]
    skipped += [{"area": int(r["area"]), "reason": "max_objects", "truncated_to": settings.MAX_OBJECTS}
                  for r in cut]
    applied = {**params.generator_kwargs(), "min_object_pixels": min_pixels}

    def build_metadata(objects: list[dict], write_skipped: list[dict]) -> dict[str, Any]:
        # Written last, inside objects_saved: record the phases up to this moment.
        job.timings["objects_saved"] = job.ms_since(job.phase_begun)
        job.timings["completed"] = job.ms_since(job.started)
        return _metadata(job, image, file_name, manager, applied, retries, objects,
                         skipped + write_skipped)

    output_dir = settings.RESULTS_DIR / job.folder_name()
    with job.phase("objects_saved"):
        metadata = write_job_folder(output_dir, image.rgb, kept, extractor, build_metadata)
    log.info("objects_saved", objects=len(metadata["objects"]), skipped=len(metadata["skipped"]),
             ms=job.timings["objects_saved"])
    set_phase("completed")
    job.timings["completed"] = job.ms_since(job.started)
    log.info("completed", ms=job.timings["completed"])
    observe_phases(job.timings)
    return JobResult(job.id, output_dir, metadata, dict(job.timings))


def _metadata(job: _Job, image: DecodedImage, file_name: str, manager: ModelManager,
              params: dict[str, Any], retries: list[dict], objects: list[dict],
              skipped: list[dict]) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "created_at": job.created.isoformat(),
        "image": {"file_name": file_name, "width": image.width, "height": image.height,
                  "format": image.format, "mode": image.mode},
        "model_type": manager.model_type,
        "device": manager.device,
        "precision": manager.precision,
        "precision_fallback_reason": manager.precision_fallback_reason,
        "parameters": params,
        "timings_ms": dict(job.timings),
        "retries": retries,
        "objects": objects,
        "skipped": skipped,
    }
