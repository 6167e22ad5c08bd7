"""Prompted vs automatic generation on the same image, model and runtime: time per image
for one point prompt (image encoding included), five point prompts, and segmenting
everything with the default parameters, in `exact` and in `fast` precision.

    python -m bench.prompt_bench                       # sam_tiny, shipped weights, 512x512
    python -m bench.prompt_bench --model vit_b --checkpoint sam_vit_b_01ec64.pth --size 1024

`fast` falls back to `exact` where bf16 is not fast on the device; the table says so.
Writes bench/results/prompts_<model>_<device>.{json,md}.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from app.core.config import Settings
from app.schemas.prompts import Prompt
from app.services.model.manager import ModelManager
from bench.bench_support import machine_description
from sam_tiny.scenes import generate_scene

OUT_DIR = Path(__file__).parent / "results"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sam_tiny", help="model type (default: sam_tiny)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights (default: the model's usual place)")
    parser.add_argument("--size", type=int, default=512, help="side of the generated scene in pixels (default: 512)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case; the median is reported (default: 3)")
    parser.add_argument("--seed", type=int, default=40_000, help="scene seed (default: 40000)")
    return parser.parse_args()


def _median_s(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        begun = time.perf_counter()
        work()
        times.append(time.perf_counter() - begun)
    return round(statistics.median(times), 4)


def _point_prompts(masks: list[np.ndarray], count: int) -> list[Prompt]:
    prompts = []
    for mask in masks[:count]:
        ys, xs = np.nonzero(mask)
        middle = len(xs) // 2
        prompts.append(Prompt(points=[(float(xs[middle]), float(ys[middle]))]))
    return prompts


def bench_precision(args: argparse.Namespace, precision: str, image: np.ndarray,
                    masks: list[np.ndarray]) -> dict:
    manager = ModelManager(Settings(DEFAULT_MODEL=args.model, SAM_CHECKPOINT_PATH=args.checkpoint,
                                    PRECISION=precision))
    manager.warm_up()
    one, five = _point_prompts(masks, 1), _point_prompts(masks * 5, 5)
    automatic = _median_s(lambda: manager.generator().generate(image), args.repeats)
    one_s = _median_s(lambda: manager.prompted_generator().generate(image, one), args.repeats)
    five_s = _median_s(lambda: manager.prompted_generator().generate(image, five), args.repeats)
    return {"requested": precision, "ran": manager.precision,
            "fallback_reason": manager.precision_fallback_reason, "device": manager.device,
            "automatic_s": automatic, "one_point_s": one_s, "five_points_s": five_s,
            "speedup_one_point": round(automatic / one_s, 1)}


def markdown(report: dict) -> str:
    lines = [f"# Prompted vs automatic generation: {report['model']}, {report['size']}x{report['size']}",
             "", f"Machine: {report['machine']}", "",
             "| precision (ran) | segment everything | 1 point | 5 points | 1 point is faster by |",
             "|---|---|---|---|---|"]
    for row in report["rows"]:
        ran = row["ran"] + (f" (fallback: {row['fallback_reason']})" if row["fallback_reason"] else "")
        lines.append(f"| {row['requested']} ({ran}) | {row['automatic_s']} s | {row['one_point_s']} s "
                     f"| {row['five_points_s']} s | {row['speedup_one_point']}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _arguments()
    image, masks = generate_scene(np.random.default_rng(args.seed), args.size, args.size)
    rows = [bench_precision(args, precision, image, masks) for precision in ("exact", "fast")]
    report = {"model": args.model, "size": args.size, "repeats": args.repeats,
              "machine": machine_description(), "rows": rows}
    OUT_DIR.mkdir(exist_ok=True)
    stem = OUT_DIR / f"prompts_{args.model}_{rows[0]['device']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
