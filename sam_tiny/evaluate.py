"""Evaluate sam_tiny weights with the stock SamAutomaticMaskGenerator on held-out scenes.

    python -m sam_tiny.evaluate                      # shipped weights, 20 scenes
    python -m sam_tiny.evaluate --scenes 5 --out /tmp/eval.json

The generator runs with its DEFAULT parameters (32x32 points, pred_iou_thresh 0.88,
stability_score_thresh 0.95, box NMS 0.7) unless the two filter thresholds are given. A
drawn object counts as recovered when some generated mask overlaps it with IoU >=
--match-iou; a generated mask that overlaps no drawn object with IoU >= --unmatched-iou is
"unmatched" (reported separately when it is the scene background); a second mask of an
already recovered object is a duplicate. Prints one row per scene and a summary, and writes
all of it as JSON.
"""

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator

from app.services.model.registry import BUNDLED_WEIGHTS_DIR, build_sam_tiny
from bench.mask_agreement import iou_matrix
from sam_tiny.scenes import generate_scene

EVAL_SEED = 20_000  # training draws from seeds 0 and 1, its own check from 1_000_003


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_WEIGHTS_DIR / "sam_tiny.pth")
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--match-iou", type=float, default=0.8)
    parser.add_argument("--unmatched-iou", type=float, default=0.5)
    parser.add_argument("--pred-iou-thresh", type=float, default=0.88,
                        help="generator filter; 0.88 is SamAutomaticMaskGenerator's default")
    parser.add_argument("--stability-score-thresh", type=float, default=0.95,
                        help="generator filter; 0.95 is SamAutomaticMaskGenerator's default")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("docs/sam_tiny_eval.json"))
    return parser.parse_args(argv)


def describe_checkpoint(path: Path) -> dict:
    """Name the weights by content, not by where this machine keeps them."""
    return {"checkpoint": path.name,
            "checkpoint_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def score_scene(objects, masks, match_iou=0.8, unmatched_iou=0.5) -> dict:
    """Recovered objects, unmatched masks and background masks for one scene."""
    ious = iou_matrix(objects, masks)
    background = ~np.any(objects, axis=0) if objects else None
    best_per_mask = ious.max(axis=0) if objects else np.zeros(len(masks))
    unmatched = [i for i in range(len(masks)) if best_per_mask[i] < unmatched_iou]
    on_background = [i for i in unmatched
                     if background is not None and iou_matrix([background], [masks[i]])[0, 0] >= 0.5]
    best_per_object = ious.max(axis=1) if masks else np.zeros(len(objects))
    matches_per_object = (ious >= match_iou).sum(axis=1)
    return {
        "objects": len(objects),
        "recovered": int((best_per_object >= match_iou).sum()),
        "best_iou_per_object": [round(float(v), 3) for v in best_per_object],
        "object_pixels": [int(o.sum()) for o in objects],
        "masks": len(masks),
        "unmatched_masks": len(unmatched),
        "background_masks": len(on_background),
        "duplicate_masks": int(np.maximum(matches_per_object - 1, 0).sum()),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    generator = SamAutomaticMaskGenerator(
        build_sam_tiny(str(args.checkpoint)), pred_iou_thresh=args.pred_iou_thresh,
        stability_score_thresh=args.stability_score_thresh)
    rng = np.random.default_rng(args.seed)
    rows = []
    print(f"{'scene':>5} {'objects':>7} {'recovered':>9} {'masks':>5} {'unmatched':>9} "
          f"{'background':>10} {'duplicates':>10} {'seconds':>7}")
    for index in range(args.scenes):
        image, objects = generate_scene(rng)
        start = time.perf_counter()
        masks = [m["segmentation"] for m in generator.generate(image)]
        row = {"scene": index, **score_scene(objects, masks, args.match_iou, args.unmatched_iou),
               "seconds": round(time.perf_counter() - start, 2)}
        rows.append(row)
        print(f"{index:>5} {row['objects']:>7} {row['recovered']:>9} {row['masks']:>5} "
              f"{row['unmatched_masks']:>9} {row['background_masks']:>10} "
              f"{row['duplicate_masks']:>10} {row['seconds']:>7}")
    summary = summarize(rows, args)
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "scenes": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


def summarize(rows: list[dict], args: argparse.Namespace) -> dict:
    """Totals over all scenes, plus recovery split by object size."""
    objects = sum(r["objects"] for r in rows)
    recovered = sum(r["recovered"] for r in rows)
    sizes = np.array([p for r in rows for p in r["object_pixels"]])
    hits = np.array([i >= args.match_iou for r in rows for i in r["best_iou_per_object"]])
    by_size = {}
    for name, low, high in (("small_<600px", 0, 600), ("medium_600-3000px", 600, 3000),
                            ("large_>=3000px", 3000, 10**9)):
        chosen = (sizes >= low) & (sizes < high)
        by_size[name] = {"objects": int(chosen.sum()),
                         "recovered_share": round(float(hits[chosen].mean()), 3)
                         if chosen.any() else None}
    seconds = [r["seconds"] for r in rows]
    return {
        **describe_checkpoint(args.checkpoint),
        "seed": args.seed,
        "scenes": len(rows),
        "objects": objects,
        "recovered": recovered,
        "recovered_share": round(recovered / max(objects, 1), 3),
        "match_iou": args.match_iou,
        "masks": sum(r["masks"] for r in rows),
        "unmatched_masks": sum(r["unmatched_masks"] for r in rows),
        "background_masks": sum(r["background_masks"] for r in rows),
        "duplicate_masks": sum(r["duplicate_masks"] for r in rows),
        "recovered_by_size": by_size,
        "seconds_per_scene_mean": round(float(np.mean(seconds)), 2),
        "seconds_per_scene_max": round(float(np.max(seconds)), 2),
        "threads": args.threads,
        "pred_iou_thresh": args.pred_iou_thresh,
        "stability_score_thresh": args.stability_score_thresh,
        "generator": "SamAutomaticMaskGenerator, other parameters at their defaults",
    }


if __name__ == "__main__":
    main()
