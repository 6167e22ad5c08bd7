"""Meta's SAM2AutomaticMaskGenerator vs the service's SAM 2.1 engine in each PRECISION
mode, in one run, on the same checkpoint (seeded random weights of the real
architecture, in Meta's published format), image and parameters: wall time, speed-up,
peak memory, mask count and matched-mask IoU against Meta's masks, with the load
average before and after.
Our model comes from the service's start-up (`prepare_model`); Meta's from its own
code (the test-only `sam2` package: `make install-dev`).

    python -m bench.sam2_bench                                  # hiera tiny, 16x16, 1024x683
    python -m bench.sam2_bench --models sam2.1_hiera_tiny,sam2.1_hiera_small --points 16,32

Writes bench/results/sam2_<model>_cpu_<w>x<h>.{json,md}. Parameter sets: Meta's
defaults, and a permissive one (IoU and stability filters off, NMS keeping every box)
so that agreement is measured over many masks even with random weights.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from app.services.engine.records import MaskRecord
from bench.bench_models import bench_manager, meta_sam2_config, seeded_checkpoint
from bench.bench_support import generated_image, machine_description, resource_sampler
from bench.mask_agreement import compare_masks

PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}
RESULTS = Path(__file__).resolve().parent / "results"


def _timed(fn) -> tuple[list, float, dict]:
    with resource_sampler(torch.device("cpu")) as used:
        started = time.perf_counter()
        records = fn()
        seconds = time.perf_counter() - started
    return records, seconds, used


def bench_model(model_type: str, points: list[int], params: dict[str, dict], modes: list[str],
                image, work: Path, seed: int, compile_model: bool) -> list[dict]:
    """One row per (grid, parameter set, mode); Meta's run is shared by the modes'
    rows. Our engines start as the service does (warm-up included), so compiling is
    not timed in a row but reported as `warm_up_s`; Meta's model makes its first call
    untimed too."""
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.build_sam import build_sam2

    checkpoint = seeded_checkpoint(model_type, seed, work / "weights")
    managers = {}
    for mode in modes:  # a mode that falls back to one already run is not run twice
        manager = bench_manager(model_type, checkpoint, "cpu", mode, compile_model,
                                work / mode, 64, warm_up=True)
        if manager.precision in managers:
            print(f"{mode} runs as {manager.precision} here: {manager.precision_fallback_reason}")
        managers.setdefault(manager.precision, manager)
    meta = build_sam2(meta_sam2_config(model_type), str(checkpoint), device="cpu")
    SAM2AutomaticMaskGenerator(meta, points_per_side=1).generate(image)  # its first call, untimed
    rows = []
    for side in points:
        for name, values in params.items():
            load_before = os.getloadavg()[0]  # other work on the machine disturbs timings
            stock, stock_s, stock_mb = _timed(lambda: [MaskRecord.from_stock(r) for r in
                                                       SAM2AutomaticMaskGenerator(
                                                           meta, points_per_side=side, **values
                                                       ).generate(image)])
            for mode, manager in managers.items():
                ours, ours_s, ours_mb = _timed(lambda: manager.generator(
                    points_per_side=side, **values).generate(image))
                rows.append({"model": model_type, "points": f"{side}x{side}",
                             "params_name": name, "mode": manager.precision,
                             "meta_s": round(stock_s, 2), "engine_s": round(ours_s, 2),
                             "speedup": round(stock_s / ours_s, 2),
                             "meta_peak_mb": stock_mb["peak_memory_mb"],
                             "engine_peak_mb": ours_mb["peak_memory_mb"],
                             "agreement": compare_masks(stock, ours).as_dict(),
                             "compiled": manager.runtime().compiled,
                             "warm_up_s": manager.runtime().warm_up_seconds,
                             "load_before": round(load_before, 2),
                             "max_load": max(stock_mb["max_load_1min"], ours_mb["max_load_1min"])})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(report: dict) -> str:
    lines = [f"Machine: {report['machine']}", f"Image {report['image']}, CPU, "
             "seeded random weights in Meta's format; Meta's time is one run per grid and "
             "parameter set, shared by the modes' rows", "",
             "| model | points | parameters | mode | Meta s | engine s | speed-up | "
             "peak MB Meta / engine | masks Meta / engine | matched IoU mean / min | "
             "warm-up s | load at start / max |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        a = r["agreement"]
        lines.append(f"| {r['model']} | {r['points']} | {r['params_name']} | {r['mode']} | "
                     f"{r['meta_s']:.1f} | {r['engine_s']:.1f} | **{r['speedup']:.2f}x** | "
                     f"{r['meta_peak_mb']:.0f} / {r['engine_peak_mb']:.0f} | "
                     f"{a['reference_count']} / {a['candidate_count']} | "
                     f"{a['mean_matched_iou']:.4f} / {a['min_matched_iou']:.4f} | "
                     f"{r['warm_up_s']} | {r['load_before']} / {r['max_load']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="sam2.1_hiera_tiny", help="comma-separated")
    parser.add_argument("--points", default="16", help="points per side, comma-separated")
    parser.add_argument("--params", default="default,permissive", help="default and/or permissive")
    parser.add_argument("--modes", default="exact,fast", help="engine PRECISION modes to run")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=683)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", choices=["on", "off"], default="on",
                        help="torch.compile the point decoder, as COMPILE_MODEL=auto does")
    args = parser.parse_args()
    params = {n: {"default": {}, "permissive": PERMISSIVE}[n] for n in args.params.split(",")}
    image = generated_image(args.width, args.height, args.seed)
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for model_type in args.models.split(","):
            rows = bench_model(model_type, [int(p) for p in args.points.split(",")], params,
                               args.modes.split(","), image, Path(work), args.seed,
                               args.compile == "on")
            report = {"machine": machine_description(), "image": f"{args.width}x{args.height}",
                      "rows": rows}
            stem = f"sam2_{model_type}_cpu_{args.width}x{args.height}"  # "." in the name
            (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
            (RESULTS / f"{stem}.md").write_text(markdown(report))
            print(markdown(report))
            print(f"wrote bench/results/{stem}.json and .md")


if __name__ == "__main__":
    main()
