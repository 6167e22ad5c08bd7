"""The one batch engine, for both callers (the CLI and POST /batches): every input goes
through the Jobs interface (submit, then get until final), embedded or on workers.

- At most `max_in_flight` jobs are submitted and not yet final, so a 100,000-image
  folder never floods the queue (a full queue, SERVER_BUSY, is waited out, not failed).
- Resumable: an input whose last manifest line is succeeded or skipped and whose result
  is still committed (`Storage.find(job_id)`) is `skipped`, without a new folder;
  failed ones are done again; `force` redoes everything.
- A failed image never stops the batch; `stop()` cancels what has not started (queued
  jobs are cancelled, inputs not yet submitted never are), running jobs finish.
- `counts` are counters moved as inputs go, never recounted from the jobs.
"""

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.core.errors import ServerBusy, ServiceError
from app.schemas import ErrorResponse, JobRequest
from app.schemas.batches import BatchCounts, ManifestLine
from app.schemas.jobs import JobRecord
from app.services.batches.inputs import BatchInput
from app.services.batches.manifest import Manifest
from app.services.jobs import Jobs
from app.services.results.storage import Storage

# bytes and the input's file name -> the job (intake.job_request with the batch's
# parameters; raises the same errors as an upload).
MakeRequest = Callable[[bytes, BatchInput], JobRequest]
_POLL_S = 0.1  # how often an in-flight job's record is read (a file or a Redis GET)
_BUSY_WAIT_S = 0.5  # the queue is full: try again after this


@dataclass
class Batch:
    inputs: list[BatchInput]
    make_request: MakeRequest
    jobs: Jobs
    storage: Storage  # where the jobs' results are committed (for resuming)
    manifest: Manifest
    max_in_flight: int = 16
    force: bool = False
    on_done: Callable[[ManifestLine], None] = lambda line: None
    counts: BatchCounts = field(default_factory=BatchCounts)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, message)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> BatchCounts:
        """Every input to its end (or until stopped); the manifest written as they go."""
        self.counts = BatchCounts(total=len(self.inputs), queued=len(self.inputs))
        earlier = {} if self.force else await asyncio.to_thread(self.manifest.earlier)
        pending = iter(self.inputs)
        lanes = max(1, min(self.max_in_flight, len(self.inputs)))
        try:
            outcomes = await asyncio.gather(*(self._lane(pending, earlier) for _ in range(lanes)),
                                            return_exceptions=True)
        finally:
            await asyncio.to_thread(self.manifest.close)
        if errors := [o for o in outcomes if isinstance(o, BaseException)]:
            raise errors[0]  # the manifest could not be written: the batch stopped
        self.counts.cancelled += self.counts.queued  # never submitted: the batch was stopped
        self.counts.queued = 0
        return self.counts

    def stop(self) -> None:
        """Cancel what has not started; running jobs finish and are recorded."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    async def _lane(self, pending: Iterator[BatchInput], earlier: dict[str, ManifestLine]) -> None:
        """One of `max_in_flight` lanes: takes the next input once its last one ended."""
        for item in pending:
            if self.stopped:
                return
            line = await self._skipped(item, earlier.get(item.input)) or await self._segment(item)
            if line is None:
                continue  # cancelled before it started: no line, a re-run does it
            try:
                await asyncio.to_thread(self.manifest.append, line)
            except BaseException:
                self.stop()  # every lane stops taking inputs; jobs in flight finish
                raise
            self.on_done(line)

    async def _skipped(self, item: BatchInput, before: ManifestLine | None) -> ManifestLine | None:
        if before is None or before.status == "failed" or before.job_id is None:
            return None
        if await asyncio.to_thread(self.storage.find, before.job_id) is None:
            return None  # its result is gone (retention, or never committed): done again
        self._move("queued", "skipped")
        return before.model_copy(update={"status": "skipped", "seconds": 0.0, "error_code": None})

    async def _segment(self, item: BatchInput) -> ManifestLine | None:
        try:
            request = self.make_request(await asyncio.to_thread(item.read), item)
            record = await self._submit(request)
            if record is None:
                return None
            record = await self._follow(record)
        except OSError as exc:
            return self._failed(item, None, "INVALID_IMAGE", f"INVALID_IMAGE: cannot read: {exc}")
        except ServiceError as exc:
            return self._failed(item, None, exc.code, describe(exc.code, exc.message, exc.details))
        # _follow counted it running once it started; from there it moves on.
        state = "running" if record.started_at is not None else "queued"
        if record.status == "cancelled":
            self._move(state, "cancelled")
            return None
        seconds = None if record.started_at is None or record.finished_at is None else \
            round((record.finished_at - record.started_at).total_seconds(), 3)
        if record.result is not None:
            self._move(state, "succeeded")
            return ManifestLine(input=item.input, status="succeeded", job_id=record.job_id,
                                output_dir=record.result.output_dir,
                                objects_count=record.result.objects_count, seconds=seconds)
        error = record.error
        return self._failed(item, record.job_id, error.error_code if error else "INTERNAL_ERROR",
                            describe(error.error_code, error.message, error.details) if error
                            else "INTERNAL_ERROR: the job failed",
                            seconds, state)

    async def _submit(self, request: JobRequest) -> JobRecord | None:
        while not self.stopped:
            try:
                return await self.jobs.submit(request)
            except ServerBusy:
                await asyncio.sleep(_BUSY_WAIT_S)
        return None

    async def _follow(self, record: JobRecord) -> JobRecord:
        """Read the job's record until it is final; counts move when it starts."""
        job_id, started = record.job_id, False
        while True:
            if record.started_at is not None and not started:
                started = True
                self._move("queued", "running")
            if record.final:
                return record
            if self.stopped and record.status == "queued":
                await self.jobs.cancel(job_id)  # read back below: it may have just started
            await asyncio.sleep(_POLL_S)
            found = await asyncio.to_thread(self.jobs.get, job_id)
            record = found or record.model_copy(update={"status": "failed", "error": ErrorResponse(
                error_code="NOT_FOUND", message="The job's record is gone")})

    def _failed(self, item: BatchInput, job_id: str | None, code: str, error: str,
                seconds: float | None = None, state: str = "queued") -> ManifestLine:
        self._move(state, "failed")
        self.failures.append((item.input, error))
        return ManifestLine(input=item.input, status="failed", job_id=job_id, error_code=code,
                            seconds=seconds)

    def _move(self, source: str, target: str) -> None:
        setattr(self.counts, source, getattr(self.counts, source) - 1)
        setattr(self.counts, target, getattr(self.counts, target) + 1)


def describe(code: str, message: str, details: dict) -> str:
    """An error for a person: code, the reason or the fields at fault, message."""
    reason = details.get("reason") or "; ".join(
        f"prompt {e['prompt_index']}: {e['message']}" if "prompt_index" in e else
        f"{e.get('field', '')}: {e['message']}".lstrip(": ") for e in details.get("errors", []))
    return f"{code} ({reason}): {message}" if reason else f"{code}: {message}"
