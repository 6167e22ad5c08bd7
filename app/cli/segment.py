"""`python -m app segment PATH... --out DIR`: the server's pipeline, without the server.

Each image (files as given; folders are searched for images) goes through the same
pipeline as POST /segment and gets the same result folder under --out, which takes
every RESULTS_DIR form (a folder, or s3://bucket/prefix). Exit status:
0 when every image succeeded, 1 when any failed, 2 for a usage error.
"""

import argparse
import asyncio
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.core.config import Settings
from app.core.errors import ServiceError
from app.core.logging import setup_logger
from app.cli.prompt_options import PromptSource, add_prompt_options
from app.schemas import GenerationParams
from app.schemas.params import COCO_SEGMENTATION_HELP, CocoSegmentation

if TYPE_CHECKING:
    from app.services.model.manager import ModelManager

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
# Options that override a setting: option -> Settings field.
_SETTING_OPTIONS = {"--model": "DEFAULT_MODEL", "--checkpoint": "SAM_CHECKPOINT_PATH",
                    "--device": "DEVICE", "--precision": "PRECISION"}


@dataclass
class Outcome:
    image: Path
    objects: int | None = None
    seconds: float | None = None
    output_dir: str | None = None
    error: str | None = None


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="segment image files and folders into result folders",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    parser.add_argument("--out", default="results",
                        help="results folder or s3://bucket/prefix, as RESULTS_DIR (default: results)")
    for option, field in _SETTING_OPTIONS.items():
        annotation = Settings.model_fields[field].annotation
        choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None
        parser.add_argument(option, dest=field, choices=choices, default=None,
                            type=Path if field == "SAM_CHECKPOINT_PATH" else str,
                            help=f"overrides the {field} setting")
    params = parser.add_argument_group("generator parameters (default: as POST /segment)")
    for field, info in GenerationParams.model_fields.items():
        params.add_argument("--" + field.replace("_", "-"), dest=field, default=None,
                            type=float if float in _types(info.annotation) else int,
                            help=info.description)
    add_prompt_options(parser)
    parser.add_argument("--coco-segmentation", choices=typing.get_args(CocoSegmentation), default="auto",
                        help=COCO_SEGMENTATION_HELP)
    parser.add_argument("--verbose", action="store_true", help="print the structured log lines too")


def run(args: argparse.Namespace) -> int:
    setup_logger("INFO" if args.verbose else "WARNING", "console")
    console = Console()
    try:
        params = GenerationParams(**{f: getattr(args, f) for f in GenerationParams.model_fields
                                     if getattr(args, f) is not None})
    except ValidationError as exc:
        console.print(f"[red]Invalid generator parameters:[/red] {escape(str(exc))}")
        return 2
    try:
        prompts = PromptSource(args)
    except ValueError as exc:
        console.print(f"[red]Invalid prompts:[/red] {escape(str(exc))}")
        return 2
    overrides = {field: getattr(args, field) for field in _SETTING_OPTIONS.values()
                 if getattr(args, field, None) is not None}
    settings = Settings(**overrides, RESULTS_DIR=args.out)
    images = find_images(args.paths)
    if not images:
        console.print("[red]No images found in[/red] " + escape(" ".join(map(str, args.paths))))
        return 2
    try:
        outcomes = asyncio.run(_segment_all(images, params, prompts, settings, console,
                                            args.coco_segmentation))
    except ServiceError as exc:  # the model could not be prepared: nothing ran
        console.print(f"[red]{exc.code}:[/red] {escape(exc.message)}")
        for remedy in exc.details.get("remedies", []):
            console.print(f"  - {escape(remedy)}")
        return 1
    console.print(_summary(outcomes))
    return 1 if any(o.error for o in outcomes) else 0


def find_images(paths: list[Path]) -> list[Path]:
    """Files as given (the pipeline checks their content); images inside folders, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            found.append(path)
    return found


async def _segment_all(images: list[Path], params: GenerationParams, prompts: PromptSource,
                       settings: Settings, console: Console, coco_segmentation: CocoSegmentation,
                       ) -> list[Outcome]:
    # Imported here: torch takes seconds to import, and --help or a usage error should not wait.
    from app.services.model.bootstrap import prepare_model

    manager = await prepare_model(settings)
    outcomes = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("Segmenting", total=len(images))
        for image in images:
            progress.update(task, description=f"Segmenting {escape(image.name)}")
            outcomes.append(await _segment_one(image, params, prompts, manager, settings,
                                               coco_segmentation))
            progress.advance(task)
    return outcomes


async def _segment_one(image: Path, params: GenerationParams, prompts: PromptSource,
                       manager: "ModelManager", settings: Settings,
                       coco_segmentation: CocoSegmentation) -> Outcome:
    from app.services.pipeline import run_job
    from app.services.intake import job_request

    try:
        raw_prompts = prompts.for_image(image)
    except KeyError:
        return Outcome(image, error="not listed in the --prompts file")
    try:
        data = await asyncio.to_thread(image.read_bytes)
        job = job_request(data, image.name, params, raw_prompts, settings, coco_segmentation)
        result = await asyncio.to_thread(run_job, job, manager, settings)
    except OSError as exc:
        return Outcome(image, error=f"cannot read: {exc.strerror or exc}")
    except ServiceError as exc:
        reason = exc.details.get("reason") or "; ".join(
            f"prompt {e['prompt_index']}: {e['message']}" if "prompt_index" in e else e["message"]
            for e in exc.details.get("errors", []))
        return Outcome(image, error=f"{exc.code}{f' ({reason})' if reason else ''}: {exc.message}")
    return Outcome(image, objects=len(result.metadata.objects),
                   seconds=result.metadata.timings_ms.completed / 1000,
                   output_dir=result.output_dir)


def _summary(outcomes: list[Outcome]) -> Table:
    failed = sum(1 for o in outcomes if o.error)
    table = Table(title=f"{len(outcomes) - failed} of {len(outcomes)} images segmented")
    for column in ("Image", "Status", "Objects", "Seconds", "Result folder / error"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        if o.error:
            table.add_row(escape(str(o.image)), "[red]failed[/red]", "", "", escape(o.error))
        else:
            table.add_row(escape(str(o.image)), "[green]ok[/green]", str(o.objects),
                          f"{o.seconds:.1f}", escape(str(o.output_dir)))
    return table


def _types(annotation) -> tuple:
    return typing.get_args(annotation) or (annotation,)
