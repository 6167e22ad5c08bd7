"""Stock SamAutomaticMaskGenerator vs MaskEngine, in one run, on the same weights, image
and parameters: per-phase wall time, speed-up, first-request latency (compilation
included), peak memory, mask count and matched-mask IoU against the stock masks.

    python -m bench.amg_bench                      # vit_b, seeded random weights, 1024x768
    python -m bench.amg_bench --model sam_tiny --width 320 --height 240   # a quick try
    python -m bench.amg_bench --checkpoint sam_vit_b_01ec64.pth --image photo.jpg

Writes bench/results/amg_<model>_<device>_<w>x<h>.{json,md}. Two parameter sets run:
the generator defaults, and a permissive one (IoU and stability filters off, NMS keeping
every box) so that agreement is measured over many masks even with random weights.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator

from app.services.engine.generator import MaskEngine
from app.services.engine.precision import choose_precision, use_compile_cache
from app.services.engine.records import MaskRecord
from app.services.engine.runtime import SamRuntime
from bench.mask_agreement import compare_masks
from app.services.model.registry import MODEL_REGISTRY
from bench.bench_support import (PhaseTimer, generated_image, machine_description, markdown,
                                 resource_sampler)
from bench.pipeline_ratio import pipeline_ratio

# Filters off and NMS keeping every box (IoU never exceeds 1): random weights give
# near-identical masks that NMS would reduce to one, and agreement needs many.
PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[3:]))
    parser.add_argument("--model", default="vit_b", choices=sorted(MODEL_REGISTRY))
    parser.add_argument("--checkpoint", type=Path, help="real weights (default: seeded random)")
    parser.add_argument("--image", type=Path, help="image file (default: a generated scene)")
    parser.add_argument("--width", type=int, default=1024, help="generated image width")
    parser.add_argument("--height", type=int, default=768, help="generated image height")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--modes", default="exact,fast", help="engine PRECISION modes to run")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--param-sets", default="default,permissive",
                        help="which parameter sets to run (default, permissive)")
    parser.add_argument("--batch-size", type=int, default=64, help="engine decode batch")
    parser.add_argument("--no-compile", action="store_true", help="run the engine eagerly")
    parser.add_argument("--compile-cache", type=Path,
                        help="inductor cache dir (default: a fresh one, so compiling is cold)")
    parser.add_argument("--pipeline", action="store_true",
                        help="also time the whole POST /segment pipeline (default parameters)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    return parser.parse_args()


def _run(generate, phases: PhaseTimer, image: np.ndarray, device: torch.device) -> tuple:
    with resource_sampler(device) as resources:
        started = time.perf_counter()
        records = generate(image)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        total = time.perf_counter() - started
    spent = {k: round(v, 2) for k, v in phases.seconds.items()}
    spent["rest"] = round(total - sum(phases.seconds.values()), 2)
    phases.seconds.clear()
    return records, {"total_s": round(total, 2), "phases_s": spent, "masks": len(records),
                     **resources}


def main() -> None:
    args = _arguments()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    torch.manual_seed(args.seed)
    sam = MODEL_REGISTRY[args.model].builder()
    notes = []
    if args.checkpoint:
        sam.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
        notes.append(f"weights: {args.checkpoint}")
    else:
        notes.append(f"weights: seeded random (torch seed {args.seed}); no checkpoint given")
    sam.to(device).eval()
    image = (np.array(Image.open(args.image).convert("RGB")) if args.image
             else generated_image(args.width, args.height, args.seed))
    print(f"model {args.model} on {device}; image {image.shape[1]}x{image.shape[0]}; "
          f"{notes[0]}", flush=True)
    use_compile_cache(args.compile_cache or Path(tempfile.mkdtemp(prefix="amg_inductor_")))
    param_sets = {"default": {"points_per_side": args.points_per_side},
                  "permissive": {"points_per_side": args.points_per_side, **PERMISSIVE}}
    param_sets = {name: param_sets[name] for name in args.param_sets.split(",")}

    rows, stock_records = [], {}
    for name, params in param_sets.items():
        stock = SamAutomaticMaskGenerator(sam, **params)
        timer = PhaseTimer()
        stock.predictor.set_image = timer.wrap("encoder", stock.predictor.set_image)
        stock.predictor.predict_torch = timer.wrap("decoder", stock.predictor.predict_torch)
        stock_records[name], row = _run(
            lambda img: [MaskRecord.from_stock(r) for r in stock.generate(img)], timer, image, device)
        rows.append({"params_name": name, "generator": "stock", **row})
        print(f"stock {name}: {row['total_s']} s, {row['masks']} masks", flush=True)

    runs = {}
    for requested in args.modes.split(","):
        choice = choose_precision(requested, device)
        label = f"engine {requested}" + (f" (-> {choice.mode})" if choice.mode != requested else "")
        if choice.fallback_reason:
            notes.append(f"{requested}: falls back to {choice.mode}: {choice.fallback_reason}")
        if choice.mode in runs:  # same engine as a mode already measured: not run twice
            notes.append(f"{label}: same configuration as engine {choice.mode}; not re-run")
            continue
        runtime = SamRuntime(sam, choice, not args.no_compile, args.batch_size)
        timer = PhaseTimer()
        runtime.embed = timer.wrap("encoder", runtime.embed)
        runtime.decode = timer.wrap("decoder", runtime.decode)
        started = time.perf_counter()
        MaskEngine(runtime, **next(iter(param_sets.values()))).generate(image)
        first_request = round(time.perf_counter() - started, 2)
        timer.seconds.clear()
        runs[choice.mode] = runtime
        for name, params in param_sets.items():
            records, row = _run(MaskEngine(runtime, **params).generate, timer, image, device)
            stock_row = next(r for r in rows if r["params_name"] == name and r["generator"] == "stock")
            rows.append({"params_name": name, "generator": label, **row,
                         "speedup": round(stock_row["total_s"] / row["total_s"], 2),
                         "first_request_s": first_request, "compiled": runtime.compiled,
                         "agreement": compare_masks(stock_records[name], records).as_dict()})
            print(f"{label} {name}: {row['total_s']} s ({rows[-1]['speedup']}x), "
                  f"{row['masks']} masks, agreement {rows[-1]['agreement']}", flush=True)
    rows.sort(key=lambda r: (r["params_name"], r["generator"] != "stock"))

    report = {"machine": machine_description(),
              "model": args.model, "device": str(device),
              "image": str(args.image or f"generated {args.width}x{args.height}"),
              "batch_size": args.batch_size, "rows": rows, "notes": notes}
    if args.pipeline:
        report["pipeline"] = pipeline_ratio(sam, args.model, image, args.batch_size, device,
                                            not args.no_compile)
        notes.append(f"POST /segment pipeline: {report['pipeline']}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"amg_{args.model}_{device.type}_{image.shape[1]}x{image.shape[0]}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
