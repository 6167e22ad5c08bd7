"""The CLI's side of a batch: the jobs runner (embedded, or the workers), the batch
engine over it, a progress bar on a terminal and the summary."""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from app.cli.prompt_options import PromptSource
from app.core.config import S3Location, Settings
from app.core.errors import InvalidRequest, ServiceError, StorageError
from app.schemas import GenerationParams, JobRequest
from app.schemas.params import CocoSegmentation
from app.services.batches.inputs import BatchInput
from app.services.batches.manifest import open_manifest

_FAILURES_SHOWN = 50  # the manifest has them all


@dataclass(frozen=True)
class BatchOptions:
    params: GenerationParams
    prompts: PromptSource
    coco_segmentation: CocoSegmentation
    out: Path | S3Location
    force: bool
    max_in_flight: int


async def run_batch(inputs: list[BatchInput], options: BatchOptions, settings: Settings,
                    console: Console) -> int:
    """Run the batch to its end; the exit status (0 all done, 1 any failed)."""
    # Imported here: torch takes seconds to import, and --help or a usage error should not wait.
    from app.services.batches.engine import Batch
    from app.services.intake import job_request
    from app.services.jobs import start_jobs
    from app.services.results.storage import open_storage

    def make_request(data: bytes, item: BatchInput) -> JobRequest:
        try:
            raw_prompts = options.prompts.for_image(Path(item.input))
        except KeyError:
            raise InvalidRequest("not listed in the --prompts file") from None
        return job_request(data, item.file_name, options.params, raw_prompts, settings,
                           options.coco_segmentation)

    # Embedded job records only carry each job to its end here: kept out of --out.
    with tempfile.TemporaryDirectory(prefix="sam-batch-records-") as records:
        settings = settings.model_copy(update={"JOBS_DIR": Path(records)})
        try:
            jobs = await start_jobs(settings)
            ready, state = await jobs.readiness()
            if not ready:
                raise _not_ready(state, options.out)
            manifest = open_manifest(options.out)
        except ServiceError as exc:  # no model, no broker, no storage: nothing ran
            _print_error(console, exc)
            return 1
        if state.get("workers") == 0:
            console.print("[yellow]No worker seen yet:[/yellow] jobs wait until one starts.")
        try:
            batch = Batch(inputs, make_request, jobs, open_storage(settings), manifest,
                          options.max_in_flight, options.force)
            await _with_progress(batch, console)
        except ServiceError as exc:  # the manifest could not be written
            _print_error(console, exc)
            return 1
        finally:
            await jobs.shutdown()
    console.print(_summary(batch, manifest.location))
    return 1 if batch.counts.failed else 0


async def _with_progress(batch, console: Console) -> None:
    columns = (TextColumn("Segmenting"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("batch", total=len(batch.inputs), rate="")
        started = time.monotonic()

        def done(line) -> None:
            minutes = max(time.monotonic() - started, 1e-3) / 60
            progress.update(task, advance=1,
                            rate=f"{(batch.counts.done - batch.counts.skipped) / minutes:.1f} images/min")

        batch.on_done = done
        await batch.run()


def _summary(batch, manifest: str) -> Table | str:
    c = batch.counts
    title = (f"{c.succeeded + c.skipped} of {c.total} images done: {c.succeeded} segmented now, "
             f"{c.skipped} skipped (done by an earlier run), {c.failed} failed; "
             f"manifest: {escape(manifest)}")
    if not batch.failures:
        return title
    table = Table(title=title, title_justify="left")
    table.add_column("Failed input", overflow="fold")
    table.add_column("Error", overflow="fold")
    for input_name, error in batch.failures[:_FAILURES_SHOWN]:
        table.add_row(escape(input_name), escape(error))
    if len(batch.failures) > _FAILURES_SHOWN:
        table.add_row(f"... {len(batch.failures) - _FAILURES_SHOWN} more", "see the manifest")
    return table


def _not_ready(state: dict, out: Path | S3Location) -> ServiceError:
    """Why no job can run, as what to fix (the store's own words are in the log)."""
    if state.get("results_writable") is False:
        return StorageError(f"Cannot write results to {out}", {"remedies": [
            "check that the folder or bucket exists and that this user may write to it"],
            **state})
    return ServiceError("Jobs cannot run now", state)


def _print_error(console: Console, exc: ServiceError) -> None:
    console.print(f"[red]{exc.code}:[/red] {escape(exc.message)}")
    for remedy in exc.details.get("remedies", []):
        console.print(f"  - {escape(remedy)}")
