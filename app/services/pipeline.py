"""The segmentation pipeline, phase by phase:

received -> preprocessed -> model_loaded -> masks_generated -> objects_saved -> completed

Each phase is logged with its duration and counts, and reported to an optional
`Progress` callback. The clock stops once, just before metadata.json is written, so
metadata.json and the HTTP answer carry the same timings. `run_job` is the blocking
pipeline; a jobs runner (app.services.jobs) or the CLI calls it off the event loop.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from app.core.config import Settings
from app.core.errors import ServiceError
from app.core.logging import bind_job, get_logger, set_phase
from app.schemas import (AppliedParameters, ImageInfo, JobMetadata, JobRequest, Retry, SkippedMask,
                         Timings)
from app.services.deadline import StopSignal, stoppable
from app.services.engine.records import MaskRecord
from app.services.identity import worker_name
from app.services.image_processor import DecodedImage, decode_image
from app.services.metrics import observe_phases
from app.services.model.recovery import generate_masks
from app.services.model.manager import ModelManager
from app.services.results import layout
from app.services.results.storage import open_storage
from app.services.results.writer import ResultFolder

log = get_logger(__name__)
# progress(phase, share of point batches done while masks are generated, else None)
Progress = Callable[[str, float | None], None]


@dataclass(frozen=True)
class JobResult:
    folder: str  # the result folder's name
    output_dir: str  # where it is: `results/<folder>` or `s3://bucket/prefix/<folder>`
    metadata: JobMetadata

    @property
    def job_id(self) -> str:
        return self.metadata.job_id


@dataclass
class _Job:
    id: str
    progress: Progress
    created: datetime
    ms: dict[str, float] = field(default_factory=dict)  # per phase, filled as they end
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase `name`; a ServiceError raised in it names the phase."""
        set_phase(name)
        self.progress(name, None)
        begun = time.perf_counter()
        try:
            yield
        except ServiceError as exc:
            exc.phase = name  # the error handler logs where the job failed
            raise
        self.ms.setdefault(name, _ms_since(begun))

    def stop_clock(self, last_phase: str, begun: float) -> Timings:
        """End the last phase and the job: the timings recorded for good."""
        self.ms[last_phase] = _ms_since(begun)
        return Timings(**self.ms, completed=_ms_since(self.started))


def _ms_since(begun: float) -> float:
    return round((time.perf_counter() - begun) * 1000, 1)


def discard_result(settings: Settings, result: JobResult) -> None:
    """Remove the folder of a job whose client will never receive it (timeout, cancel)."""
    open_storage(settings).delete(result.folder)
    log.warning("result_discarded", job_id=result.job_id, output_dir=result.output_dir)


def _batch_done(job: _Job, cancel: StopSignal, share: float) -> None:
    """Between batches of prompts: report the share done, and stop a job that was
    cancelled or timed out instead of finishing its (longest) phase."""
    job.progress("masks_generated", share)
    cancel.check()


def run_job(request: JobRequest, manager: ModelManager, settings: Settings,
            progress: Progress | None = None, cancel: StopSignal | None = None,
            created: datetime | None = None) -> JobResult:
    """The whole job, blocking: decode, generate, write the result folder. Setting
    `cancel` stops it at the next phase boundary or batch of prompts (JobAbandoned).
    `created` (default: now) names the folder, so a re-run of an accepted job
    replaces its folder."""
    job = _Job(request.job_id, progress or (lambda phase, share: None),
               created or datetime.now(timezone.utc))
    cancel = cancel or StopSignal()
    bind_job(job.id)
    log.info("received", bytes=len(request.image))
    job.ms["received"] = _ms_since(job.started)
    with job.phase("preprocessed"):
        image = decode_image(request.image, settings.MAX_IMAGE_PIXELS)
    log.info("preprocessed", width=image.width, height=image.height, format=image.format,
             ms=job.ms["preprocessed"])
    with job.phase("model_loaded"):
        manager.model()
    log.info("model_loaded", model_type=manager.model_type, device=manager.device,
             ms=job.ms["model_loaded"])
    cancel.check()
    # stoppable: the generator's post-processing checkpoints obey `cancel` as well
    with job.phase("masks_generated"), stoppable(cancel):
        records, retries = generate_masks(
            manager, image.rgb, request.params.generator_kwargs(),
            simulate_oom=settings.SIMULATE_CUDA_OOM, prompts=request.prompts,
            on_batch=lambda done, total: _batch_done(job, cancel, done / total))
    log.info("masks_generated", count=len(records), retries=len(retries),
             ms=job.ms["masks_generated"])
    cancel.check()
    result = _save(job, request, image, records, retries, manager, settings, cancel)
    set_phase("completed")
    job.progress("completed", None)
    log.info("completed", ms=result.metadata.timings_ms.completed)
    observe_phases(result.metadata.timings_ms.model_dump())
    return result


def _save(job: _Job, request: JobRequest, image: DecodedImage, records: list[MaskRecord],
          retries: list[Retry], manager: ModelManager, settings: Settings,
          cancel: StopSignal) -> JobResult:
    """The objects_saved phase: choose the objects, write them, commit metadata.json;
    `cancel` stops the writing too (a store that hangs never outlives the deadline)."""
    applied = request.params.applied(settings.MIN_OBJECT_PIXELS, manager.family.parameters)
    prompts = request.prompts
    chosen, skipped = select_objects(records, applied, settings.MAX_OBJECTS, prompts is not None)
    name = layout.folder_name(job.created, job.id, request.file_name)
    begun = time.perf_counter()
    with job.phase("objects_saved"), ResultFolder(open_storage(settings), name, cancel) as folder:
        objects, unwritten = folder.write_objects(image.rgb, [records[i] for i in chosen])
        if prompts is not None:  # object i answered prompt chosen[i]
            objects = [o.model_copy(update={"prompt": prompts[chosen[o.index]],
                                            "prompt_index": chosen[o.index]}) for o in objects]
        metadata = JobMetadata(
            job_id=job.id, created_at=job.created.isoformat(),
            image=ImageInfo(file_name=request.file_name, width=image.width, height=image.height,
                            format=image.format, mode=image.mode),
            model_type=manager.model_type, device=manager.device,
            precision=manager.precision,
            precision_fallback_reason=manager.precision_fallback_reason,
            parameters=applied, timings_ms=job.stop_clock("objects_saved", begun),
            retries=retries, objects=objects, skipped=skipped + unwritten, worker=worker_name(),
            coco_segmentation=request.coco_segmentation)
        output_dir = folder.commit(metadata)
    log.info("objects_saved", objects=len(objects), skipped=len(metadata.skipped),
             ms=metadata.timings_ms.objects_saved)
    return JobResult(name, output_dir, metadata)


def select_objects(records: list[MaskRecord], params: AppliedParameters, max_objects: int,
                   prompted: bool = False) -> tuple[list[int], list[SkippedMask]]:
    """The indices of the records to save, and the ones left out with the reason:
    smaller than `min_object_pixels`, or past MAX_OBJECTS (which bounds the disk one
    busy image can fill). Automatic masks go largest first; prompted ones keep the
    order of their prompts, and an empty answer is skipped as `empty_mask`."""
    order = range(len(records)) if prompted else sorted(
        range(len(records)), key=lambda i: records[i].area, reverse=True)
    least = max(params.min_object_pixels, 1)
    chosen, skipped = [], []
    for i in order:
        area, which = records[i].area, {"prompt_index": i} if prompted else {}
        if area == 0 and prompted:
            skipped.append(SkippedMask(area=0, reason="empty_mask", **which))
        elif area < least:
            skipped.append(SkippedMask(area=area, reason="smaller_than_min_object_pixels", **which))
        elif len(chosen) >= max_objects:
            skipped.append(SkippedMask(area=area, reason="max_objects", truncated_to=max_objects,
                                       **which))
        else:
            chosen.append(i)
    return chosen, skipped
