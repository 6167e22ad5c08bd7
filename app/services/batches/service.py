"""Batches over HTTP (POST/GET/DELETE /batches): the batch engine the CLI uses, run as
a background task of the API process over its Jobs (embedded, or the workers).

Input rules, one owner: `s3://bucket/prefix/`, or a folder under BATCH_INPUT_ROOT
(nothing outside it, symlinks and `..` resolved first; no folder at all while it is
unset). The manifest lives in the results storage, at
`<RESULTS_DIR>/.batches/<input key>/manifest.jsonl`, keyed by the input: posting the
same input again resumes (committed inputs are skipped) unless `force`.
A batch's state lives in this process: a restart forgets it (the manifest stays, and
posting the input again resumes); finished batches are kept for `_KEPT` more.
"""

import asyncio
import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from app.core.config import S3Location, Settings
from app.core.errors import ServiceError
from app.core.logging import get_logger
from app.schemas.batches import BatchRequest, BatchStatus, BatchView
from app.services.batches.engine import Batch
from app.services.batches.inputs import BatchInput, find_inputs, invalid_input, local_folder_inputs
from app.services.batches.manifest import open_manifest
from app.services.intake import job_request
from app.services.jobs import Jobs
from app.services.model.families import check_parameters
from app.services.results.storage import open_storage

log = get_logger(__name__)
_KEPT = 1000  # finished batches remembered for GET


@dataclass
class _Running:
    batch_id: str
    request: BatchRequest
    where: str  # the input, spelt one way (a resolved folder, s3://bucket/prefix/)
    batch: Batch
    task: asyncio.Task

    def view(self) -> BatchView:
        status: BatchStatus = "running"
        error = None
        if self.task.done():
            error = None if self.task.cancelled() else self.task.exception()
            status = "failed" if error else "cancelled" if self.batch.stopped else "finished"
        return BatchView(batch_id=self.batch_id, status=status, input=self.request.input,
                         counts=self.batch.counts, manifest=self.batch.manifest.location,
                         status_url=f"/batches/{self.batch_id}",
                         error=getattr(error, "message", None if error is None else "unexpected error"))


class BatchService:
    def __init__(self, settings: Settings, jobs: Jobs) -> None:
        self.settings, self.jobs = settings, jobs
        self._batches: OrderedDict[str, _Running] = OrderedDict()

    async def start(self, request: BatchRequest) -> BatchView:
        """Check the input and parameters, then run the batch in the background."""
        check_parameters(self.settings.DEFAULT_MODEL, request.params.model_fields_set)
        where, inputs = await asyncio.to_thread(self._inputs, request.input)
        running = next((r for r in self._batches.values()
                        if r.where == where and not r.task.done()), None)
        if running is not None:
            raise invalid_input("already_running", f"A batch of this input is running: "
                                f"{running.batch_id}", batch_id=running.batch_id)
        manifest = await asyncio.to_thread(open_manifest, self._manifest_folder(where))

        def make_request(data: bytes, item: BatchInput):
            return job_request(data, item.file_name, request.params, None, self.settings,
                               request.coco_segmentation)

        batch = Batch(inputs, make_request, self.jobs, open_storage(self.settings), manifest,
                      self.settings.BATCH_MAX_IN_FLIGHT, request.force)
        batch_id = str(uuid.uuid4())
        task = asyncio.create_task(batch.run())
        task.add_done_callback(lambda t: self._ended(batch_id, t))
        self._batches[batch_id] = _Running(batch_id, request, where, batch, task)
        log.info("batch_started", batch_id=batch_id, inputs=len(inputs), manifest=manifest.location)
        return self._batches[batch_id].view()

    def get(self, batch_id: str) -> BatchView | None:
        running = self._batches.get(batch_id)
        return None if running is None else running.view()

    async def cancel(self, batch_id: str) -> BatchView | None:
        """Stop taking inputs and cancel queued jobs; running ones finish."""
        running = self._batches.get(batch_id)
        if running is None:
            return None
        running.batch.stop()
        return running.view()

    async def shutdown(self) -> None:
        """The API stops: every batch stops where it is (its manifest is closed; the
        jobs it had in flight are the jobs runner's to interrupt)."""
        for running in self._batches.values():
            running.batch.stop()
            running.task.cancel()
        await asyncio.gather(*(r.task for r in self._batches.values()), return_exceptions=True)

    def _inputs(self, text: str) -> tuple[str, list[BatchInput]]:
        """The input spelt one way (the manifest's key) and its images."""
        if text.startswith("s3://"):
            bucket, _, prefix = text[len("s3://"):].partition("/")
            where = f"s3://{bucket}/" + (f"{prefix.strip('/')}/" if prefix.strip("/") else "")
            return where, find_inputs([where])
        root = self.settings.BATCH_INPUT_ROOT
        if root is None:
            raise invalid_input("no_batch_input_root", "Server-side folders are not allowed here "
                                "(BATCH_INPUT_ROOT is not set); use an s3:// prefix")
        root = root.resolve()
        folder = (root / text).resolve()  # an absolute `text` replaces root here
        if not folder.is_relative_to(root):
            raise invalid_input("outside_batch_input_root", "The folder is outside BATCH_INPUT_ROOT")
        if not folder.is_dir():
            raise invalid_input("not_a_folder", "No such folder under BATCH_INPUT_ROOT")
        inputs = local_folder_inputs(folder, within=root)
        if not inputs:
            raise invalid_input("no_images", "No images found in this folder")
        return str(folder), inputs

    def _manifest_folder(self, where: str) -> Path | S3Location:
        key = f".batches/{hashlib.sha256(where.encode()).hexdigest()[:16]}"
        where = self.settings.RESULTS_DIR
        if isinstance(where, S3Location):
            return S3Location(where.bucket, f"{where.prefix}/{key}".lstrip("/"))
        return where / key

    def _ended(self, batch_id: str, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.warning("batch_failed", batch_id=batch_id,
                        error=error.message if isinstance(error, ServiceError) else repr(error))
        else:
            log.info("batch_ended", batch_id=batch_id, **self._batches[batch_id].batch.counts.model_dump())
        finished = [b for b, r in self._batches.items() if r.task.done()]
        for old in finished[:max(0, len(finished) - _KEPT)]:
            del self._batches[old]
