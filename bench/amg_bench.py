"""Stock SamAutomaticMaskGenerator vs MaskEngine (`exact`, `fast`), in one run, on the
same weights, image and parameters: per-phase wall time, speed-up, first-request
latency (compilation included), peak memory, mask count and matched-mask IoU against
the stock masks. Models come from the service's start-up (`prepare_model`).

    python -m bench.amg_bench                      # vit_b, seeded random weights, 1024x768
    python -m bench.amg_bench --models sam_tiny --width 512 --height 384   # trained sam_tiny
    python -m bench.amg_bench --device cuda --models vit_b,vit_h --batch-sizes 16,64,256
    python -m bench.amg_bench --megapixels         # ~1 MP vs ~24 MP, sam_tiny, a child each
    python -m bench.amg_bench --startup --modes exact   # cold compile, then a restart

Writes bench/results/amg_<model>_<device>_<w>x<h>.{json,md} (megapixels.*, startup.*).
Parameter sets: the generator defaults, and a permissive one (IoU and stability filters
off, NMS keeping every box) so that agreement is measured over many masks even with
random weights. sam_tiny runs on its shipped trained weights unless --checkpoint.
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
from app.services.engine.records import MaskRecord
from app.services.model.registry import MODEL_REGISTRY
from bench import megapixels, startup
from bench.bench_models import TRAINED_SAM_TINY, bench_manager, seeded_checkpoint
from bench.bench_support import (PhaseTimer, generated_image, machine_description, markdown,
                                 resource_sampler)
from bench.mask_agreement import compare_masks
from bench.pipeline_ratio import pipeline_ratio

# Filters off and NMS keeping every box (IoU never exceeds 1): random weights give
# near-identical masks that NMS would reduce to one, and agreement needs many.
PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[4:]))
    parser.add_argument("--models", default="vit_b", help=f"of {sorted(MODEL_REGISTRY)}")
    parser.add_argument("--checkpoint", type=Path, help="real weights (default: seeded random)")
    parser.add_argument("--image", type=Path, help="image file (default: a generated scene)")
    parser.add_argument("--width", type=int, default=1024, help="generated image width")
    parser.add_argument("--height", type=int, default=768, help="generated image height")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--modes", default="exact,fast", help="engine PRECISION modes to run")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--crop-n-layers", type=int, default=0)
    parser.add_argument("--param-sets", default="default,permissive",
                        help="which parameter sets to run (default, permissive)")
    parser.add_argument("--batch-sizes", default="32", help="engine decode batch sizes")
    parser.add_argument("--no-compile", action="store_true", help="run the engine eagerly")
    parser.add_argument("--compile-cache", type=Path,
                        help="inductor cache dir (default: a fresh one, so compiling is cold)")
    parser.add_argument("--pipeline", action="store_true",
                        help="also time the whole POST /segment pipeline (default parameters)")
    parser.add_argument("--megapixels", action="store_true", help="only the megapixel table")
    parser.add_argument("--startup", action="store_true", help="only cold and warm start-up")
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


def _write(out: Path, stem: str, report: dict, table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out / f"{stem}.md").write_text(table)
    print(table)
    print(f"wrote {out / stem}.json and .md")


def bench_model(model: str, args: argparse.Namespace, device: str, image: np.ndarray,
                cache: Path, param_sets: dict) -> dict:
    """Stock, then every (batch size, mode) of the engine, for one model type."""
    checkpoint = args.checkpoint or (TRAINED_SAM_TINY if model == "sam_tiny"
                                     else seeded_checkpoint(model, args.seed, cache / "weights"))
    notes = [f"weights: {checkpoint}" + ("" if args.checkpoint or model == "sam_tiny"
                                         else f" (seeded random, torch seed {args.seed})")]
    stock_manager = bench_manager(model, checkpoint, device, "exact", False, cache, 64)
    sam, torch_device = stock_manager.model(), stock_manager.runtime().device
    rows, stock = [], {}
    for name, params in param_sets.items():
        generator = SamAutomaticMaskGenerator(sam, **params)
        timer = PhaseTimer(torch_device)
        generator.predictor.set_image = timer.wrap("encoder", generator.predictor.set_image)
        generator.predictor.predict_torch = timer.wrap("decoder", generator.predictor.predict_torch)
        stock[name], row = _run(lambda img: [MaskRecord.from_stock(r)
                                             for r in generator.generate(img)],
                                timer, image, torch_device)
        rows.append({"params_name": name, "generator": "stock", **row})
        print(f"{model} stock {name}: {row['total_s']} s, {row['masks']} masks", flush=True)
    stock_manager.unload()
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        measured = set()
        for requested in args.modes.split(","):
            manager = bench_manager(model, checkpoint, device, requested, not args.no_compile,
                                    cache, batch_size)
            label = f"engine {requested}" + (f" (-> {manager.precision})"
                                             if manager.precision != requested else "")
            if manager.precision_fallback_reason:
                notes.append(f"{requested}: runs {manager.precision}: "
                             f"{manager.precision_fallback_reason}")
            if manager.precision in measured:  # the same engine as a mode already run
                notes.append(f"{label}, batch {batch_size}: same as engine {manager.precision}")
                continue
            measured.add(manager.precision)
            runtime, timer = manager.runtime(), PhaseTimer(torch_device)
            runtime.embed = timer.wrap("encoder", runtime.embed)
            runtime.decode = timer.wrap("decoder", runtime.decode)
            started = time.perf_counter()
            MaskEngine(runtime, **next(iter(param_sets.values()))).generate(image)
            first_request = round(time.perf_counter() - started, 2)
            timer.seconds.clear()
            for name, params in param_sets.items():
                records, row = _run(MaskEngine(runtime, **params).generate, timer, image,
                                    torch_device)
                stock_row = next(r for r in rows
                                 if r["params_name"] == name and r["generator"] == "stock")
                rows.append({"params_name": name, "generator": f"{label}, batch {batch_size}",
                             **row, "speedup": round(stock_row["total_s"] / row["total_s"], 2),
                             "first_request_s": first_request, "compiled": runtime.compiled,
                             "agreement": compare_masks(stock[name], records).as_dict()})
                print(f"{model} {rows[-1]['generator']} {name}: {row['total_s']} s "
                      f"({rows[-1]['speedup']}x), {row['masks']} masks, "
                      f"agreement {rows[-1]['agreement']}", flush=True)
            manager.unload()
    rows.sort(key=lambda r: (r["params_name"], r["generator"] != "stock"))
    report = {"machine": machine_description(), "model": model, "device": str(torch_device),
              "image": str(args.image or f"generated {args.width}x{args.height}"),
              "parameters": param_sets, "rows": rows, "notes": notes}
    if args.pipeline:
        report["pipeline"] = pipeline_ratio(model, checkpoint, image, 64, device,
                                            not args.no_compile, cache)
        notes.append(f"POST /segment pipeline: {report['pipeline']}")
    return report


def main() -> None:
    args = _arguments()
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    if args.megapixels:
        rows = megapixels.compare(args.modes.split(","), [1.0, 24.0])
        _write(args.out, "megapixels", {"machine": machine_description(), "rows": rows},
               f"Machine: {machine_description()}\n\n" + megapixels.markdown(rows))
        return
    if args.startup:
        rows = startup.cold_and_warm(args.models.split(","), args.modes.split(","), device,
                                     args.compile_cache)
        _write(args.out, f"startup_{device}", {"machine": machine_description(), "rows": rows},
               f"Machine: {machine_description()}\n\n" + startup.markdown(rows))
        return
    image = (np.array(Image.open(args.image).convert("RGB")) if args.image
             else generated_image(args.width, args.height, args.seed))
    cache = args.compile_cache or Path(tempfile.mkdtemp(prefix="amg_cache_"))
    common = {"points_per_side": args.points_per_side, "crop_n_layers": args.crop_n_layers}
    param_sets = {"default": common, "permissive": {**common, **PERMISSIVE}}
    param_sets = {name: param_sets[name] for name in args.param_sets.split(",")}
    for model in args.models.split(","):
        report = bench_model(model, args, device, image, cache, param_sets)
        stem = f"amg_{model}_{device}_{image.shape[1]}x{image.shape[0]}"
        _write(args.out, stem, report, markdown(report))


if __name__ == "__main__":
    main()
