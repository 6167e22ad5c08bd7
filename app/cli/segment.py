"""`python -m app segment PATH|GLOB|s3://bucket/prefix/ ... --out DIR|s3://bucket/prefix`

Every image (files as given; folders and prefixes searched recursively; quoted globs,
`**` included, expanded here) goes through the same pipeline as POST /segment and gets
a result folder named `<stem>_<timestamp>_<job_id>`. `--out` gets manifest.jsonl, one
line per input as it finishes (input, status, job_id, output_dir, objects_count,
error_code, seconds). Running the same command again skips every input whose result
is committed and retries the failed ones; --force redoes all.

Without BROKER_URL the model runs here and results go to --out. With BROKER_URL (or
--broker) every image is submitted to the workers, at most --max-in-flight at a time,
and followed to its end; the workers write the folders to their RESULTS_DIR (set the
same RESULTS_DIR here, it is where a re-run looks for them) and --out holds the manifest.
Exit status: 0 when every image succeeded (or was skipped), 1 when any failed,
2 for a usage error.
"""

import argparse
import asyncio
import typing
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape

from app.cli.batch_run import BatchOptions, run_batch
from app.cli.prompt_options import PromptSource, add_prompt_options
from app.core.config import ResultsLocation, Settings
from app.core.errors import ServiceError
from app.core.logging import setup_logger
from app.schemas import GenerationParams
from app.schemas.params import COCO_SEGMENTATION_HELP, CocoSegmentation
from app.services.batches.inputs import find_inputs

# Options that override a setting: option -> Settings field.
_SETTING_OPTIONS = {"--model": "DEFAULT_MODEL", "--checkpoint": "SAM_CHECKPOINT_PATH",
                    "--device": "DEVICE", "--precision": "PRECISION"}


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    parser = verbs.add_parser(name, help="segment image files, folders, globs and bucket prefixes",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files, folders, globs ('photos/**/*.jpg') or s3://bucket/prefix/")
    parser.add_argument("--out", default="results",
                        help="results folder or s3://bucket/prefix, as RESULTS_DIR; holds "
                             "manifest.jsonl (default: results)")
    parser.add_argument("--force", action="store_true",
                        help="redo every input, even those an earlier run committed")
    parser.add_argument("--broker", metavar="URL", help="submit to workers over this Redis "
                                                        "(default: the BROKER_URL setting)")
    parser.add_argument("--max-in-flight", type=int, metavar="N",
                        help="jobs submitted and not yet finished, at most "
                             "(default: the BATCH_MAX_IN_FLIGHT setting)")
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
        out = TypeAdapter(ResultsLocation).validate_python(args.out)
        settings = _settings(args, out)
    except ValidationError as exc:
        console.print(f"[red]Invalid options:[/red] {escape(str(exc))}")
        return 2
    try:
        prompts = PromptSource(args)
    except ValueError as exc:
        console.print(f"[red]Invalid prompts:[/red] {escape(str(exc))}")
        return 2
    try:
        inputs = find_inputs(args.paths)
    except ServiceError as exc:
        console.print(f"[red]{exc.code}:[/red] {escape(exc.message)}")
        return 2
    options = BatchOptions(params, prompts, args.coco_segmentation, out, args.force,
                           args.max_in_flight or settings.BATCH_MAX_IN_FLIGHT)
    try:
        return asyncio.run(run_batch(inputs, options, settings, console))
    except KeyboardInterrupt:
        console.print("Interrupted: run the same command again to resume.")
        return 130


def _settings(args: argparse.Namespace, out: object) -> Settings:
    """The environment's settings with the options on top. Embedded, --out is where the
    results go; with a broker the workers' RESULTS_DIR is (the same setting here)."""
    overrides = {field: getattr(args, field) for field in _SETTING_OPTIONS.values()
                 if getattr(args, field, None) is not None}
    if args.broker:
        overrides["BROKER_URL"] = args.broker
    settings = Settings(**overrides)
    return settings if settings.BROKER_URL else settings.model_copy(update={"RESULTS_DIR": out})


def _types(annotation) -> tuple:
    return typing.get_args(annotation) or (annotation,)
