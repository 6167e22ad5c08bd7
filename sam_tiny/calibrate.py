"""Do sam_tiny's predicted IoU and stability score mean what the generator's filters assume?

    python -m sam_tiny.calibrate                   # shipped weights, 20 held-out scenes
    python -m sam_tiny.calibrate --scenes 8 --out /tmp/calibration.json

Every point of the generator's default 32 x 32 grid that falls inside a drawn object is
prompted, exactly as SamAutomaticMaskGenerator would, and each of its 3 outputs is compared
with that object: predicted IoU against true IoU, plus the stability score. If the IoU head
is calibrated, outputs predicted at >= 0.88 (the default filter) really are that good; if
few objects have such an output at all, the masks, not the filters, are what falls short.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.utils.amg import build_point_grid, calculate_stability_score

from app.services.model.registry import BUNDLED_WEIGHTS_DIR, build_sam_tiny
from sam_tiny.evaluate import EVAL_SEED, describe_checkpoint
from sam_tiny.objective import true_iou
from sam_tiny.scenes import generate_scene

PRED_IOU_BINS = (0.0, 0.5, 0.7, 0.8, 0.88, 1.01)  # 0.88: the generator's default filter


@torch.no_grad()
def grid_candidates(predictor: SamPredictor, image: np.ndarray, objects: list[np.ndarray]):
    """(predicted IoU, true IoU, stability, object index) of every output of every grid point
    inside an object, as four flat arrays."""
    predictor.set_image(image)
    height, width = image.shape[:2]
    grid = build_point_grid(32) * np.array([width, height])
    columns = [[], [], [], []]
    for index, obj in enumerate(objects):
        inside = grid[obj[grid[:, 1].astype(int), grid[:, 0].astype(int)]]
        if not len(inside):
            continue
        points = predictor.transform.apply_coords(inside, (height, width))
        logits, predicted, _ = predictor.predict_torch(
            torch.as_tensor(points[:, None], dtype=torch.float), torch.ones(len(inside), 1),
            multimask_output=True, return_logits=True)
        true = true_iou(logits, torch.from_numpy(obj))
        stability = calculate_stability_score(logits.flatten(0, 1), 0.0, 1.0)
        for column, values in zip(columns, (predicted, true, stability,
                                            torch.full_like(true, index))):
            column.append(values.flatten().numpy())
    return [np.concatenate(column) if column else np.empty(0) for column in columns]


def summarize(predicted, true, stability, object_ids, objects_total) -> dict:
    """Calibration table by predicted IoU, and what a perfect filter could keep per object."""
    rows = []
    for low, high in zip(PRED_IOU_BINS, PRED_IOU_BINS[1:]):
        chosen = (predicted >= low) & (predicted < high)
        if not chosen.any():
            continue
        rows.append({"predicted_iou": f"[{low}, {min(high, 1.0)})",
                     "outputs": int(chosen.sum()),
                     "true_iou_mean": round(float(true[chosen].mean()), 3),
                     "stability_pass_share": round(float((stability[chosen] >= 0.95).mean()), 3)})
    best = np.zeros(objects_total)
    np.maximum.at(best, object_ids.astype(int), true)
    return {
        "outputs": len(true),
        "correlation_predicted_true": round(float(np.corrcoef(predicted, true)[0, 1]), 3),
        "by_predicted_iou": rows,
        "objects": objects_total,
        "objects_with_an_output_at_true_iou_0.8": round(float((best >= 0.8).mean()), 3),
        "objects_with_an_output_at_true_iou_0.88": round(float((best >= 0.88).mean()), 3),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_WEIGHTS_DIR / "sam_tiny.pth")
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("docs/sam_tiny_calibration.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor = SamPredictor(build_sam_tiny(str(args.checkpoint)))
    rng = np.random.default_rng(args.seed)
    parts, objects_total = [], 0
    for _ in range(args.scenes):
        image, objects = generate_scene(rng)
        predicted, true, stability, ids = grid_candidates(predictor, image, objects)
        parts.append((predicted, true, stability, ids + objects_total))
        objects_total += len(objects)
    summary = {**describe_checkpoint(args.checkpoint), "seed": args.seed, "scenes": args.scenes,
               **summarize(*map(np.concatenate, zip(*parts)), objects_total)}
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
