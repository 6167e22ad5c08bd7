"""Train the sam_tiny model from scratch on generated scenes and write app/weights/sam_tiny.pth.

    python -m scripts.train_sam_tiny                  # the shipped recipe (about 55 min, 2 cores)
    python -m scripts.train_sam_tiny --steps 50 --out /tmp/try.pth   # a smoke run

Every step draws fresh scenes (scripts/scenes.py), samples single-point prompts and trains
the whole SAM the way the paper does for one-point prompts: three mask outputs, only the
lowest focal + dice loss (20:1) backpropagated, and the IoU head regressed (MSE) onto the
true IoU of every output, so SamAutomaticMaskGenerator's default filters
(predicted_iou >= 0.88, stability_score >= 0.95) mean what they say. Points on the scene
background are trained to predict IoU 0: the generator then drops background masks.
Progress goes to stdout as one JSON object per line.
"""

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.services.model_registry import BUNDLED_WEIGHTS_DIR, build_sam_tiny
from scripts.scenes import generate_scene

FOCAL_WEIGHT, DICE_WEIGHT = 20.0, 1.0  # SAM's ratio
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out scenes for the final check


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1250, help="optimizer steps")
    parser.add_argument("--images", type=int, default=6, help="scenes per step")
    parser.add_argument("--prompts", type=int, default=6, help="point prompts per scene")
    parser.add_argument("--loss-size", type=int, default=128, help="side of the mask loss grid")
    parser.add_argument("--background-share", type=float, default=0.15,
                        help="share of prompts placed on the background (trained to IoU 0)")
    parser.add_argument("--lr", type=float, default=8e-4, help="peak AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is fastest on a shared 2-core machine, where "
                             "two OpenMP threads wait on each other (measured 10x slower)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, scenes and prompts")
    parser.add_argument("--max-minutes", type=float, default=56.0,
                        help="stop early (and say so) if training runs longer than this")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--out", type=Path, default=BUNDLED_WEIGHTS_DIR / "sam_tiny.pth")
    return parser.parse_args(argv)


def sample_prompts(rng, masks, count, background_share):
    """Pick `count` points; return (x, y) pairs, target masks and whether each is an object."""
    background = ~np.any(masks, axis=0) if masks else None
    points, targets, is_object = [], [], []
    for _ in range(count):
        on_background = background is not None and background.any() and (
            rng.random() < background_share)
        region = background if on_background else masks[int(rng.integers(len(masks)))]
        ys, xs = np.nonzero(region)
        pick = int(rng.integers(len(xs)))
        points.append((xs[pick], ys[pick]))
        targets.append(region)
        is_object.append(not on_background)
    return np.array(points, np.float32), np.stack(targets), np.array(is_object)


def mask_losses(logits, target):
    """Per-output focal and dice loss: logits (P, 3, H, W), target (P, 1, H, W) in {0, 1}."""
    target = target.expand_as(logits)
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    # No alpha class weighting: with the detection default (0.25 on positives) training from
    # scratch collapsed to all-background masks for the first hundreds of steps.
    focal = (ce * (1 - p_t) ** 2).mean(dim=(2, 3))
    overlap = (prob * target).sum(dim=(2, 3))
    dice = 1 - (2 * overlap + 1) / (prob.sum(dim=(2, 3)) + target.sum(dim=(2, 3)) + 1)
    return focal, dice


def true_iou(logits, target):
    """IoU of each thresholded output with the target, (P, 3)."""
    pred = logits > 0
    target = target.expand_as(pred).bool()
    inter = (pred & target).sum(dim=(2, 3)).float()
    union = (pred | target).sum(dim=(2, 3)).float()
    return inter / union.clamp(min=1)


def forward_scene(sam, embedding, points, size):
    """Decoder pass for one scene's prompts; logits resized to (P, 3, size, size)."""
    coords = torch.from_numpy(points)[:, None, :]
    labels = torch.ones(coords.shape[:2], dtype=torch.int)
    sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    low_res, iou_pred = sam.mask_decoder(
        image_embeddings=embedding[None], image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
    logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
    return logits, iou_pred


def train_step(sam, rng, args, size):
    """Loss and stats for one batch of fresh scenes."""
    scenes = [generate_scene(rng, size, size) for _ in range(args.images)]
    pixels = torch.from_numpy(np.stack([image for image, _ in scenes])).permute(0, 3, 1, 2)
    embeddings = sam.image_encoder(sam.preprocess(pixels.float()))
    total, ious = 0.0, []
    for embedding, (_, masks) in zip(embeddings, scenes):
        points, targets, is_object = sample_prompts(rng, masks, args.prompts, args.background_share)
        # The mask loss runs at loss_size (cheaper than full size on 2 cores) against a hard
        # target: hard targets push logits to confident values, which the stability filter needs.
        logits, iou_pred = forward_scene(sam, embedding, points, args.loss_size)
        target = torch.from_numpy(targets)[:, None].float()
        small_target = (F.interpolate(target, args.loss_size, mode="area") > 0.5).float()
        focal, dice = mask_losses(logits, small_target)
        mask_loss = FOCAL_WEIGHT * focal + DICE_WEIGHT * dice
        best = mask_loss.argmin(dim=1)
        with torch.no_grad():  # the IoU head learns the IoU the generator will see: full size
            full = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
            iou = true_iou(full, target) * torch.from_numpy(is_object)[:, None]
        iou_loss = F.mse_loss(iou_pred, iou)
        total = total + mask_loss.gather(1, best[:, None]).mean() + iou_loss
        chosen = iou.gather(1, best[:, None])[:, 0]
        ious.extend(chosen[torch.from_numpy(is_object)].tolist())
    return total / len(scenes), float(np.mean(ious)) if ious else 0.0


@torch.no_grad()
def held_out_miou(sam, seed, scenes=20, size=256):
    """Point-prompt mIoU (output with the highest predicted IoU) on scenes never trained on."""
    rng = np.random.default_rng(seed + HELD_OUT_SEED_OFFSET)
    ious = []
    for _ in range(scenes):
        image, masks = generate_scene(rng, size, size)
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        embedding = sam.image_encoder(sam.preprocess(pixels))[0]
        points, targets, _ = sample_prompts(rng, masks, 8, background_share=0.0)
        logits, iou_pred = forward_scene(sam, embedding, points, size)
        iou = true_iou(logits, torch.from_numpy(targets)[:, None])
        ious.extend(iou.gather(1, iou_pred.argmax(1, keepdim=True))[:, 0].tolist())
    return float(np.mean(ious))


def learning_rate(step, args):
    """Linear warm-up, then cosine decay to zero."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


def log(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    sam = build_sam_tiny()
    sam.train()
    size = sam.image_encoder.img_size
    optimizer = torch.optim.AdamW(sam.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    start, window = time.monotonic(), []
    log("train_start", **{k: str(v) for k, v in vars(args).items()}, torch=torch.__version__)
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        loss, miou = train_step(sam, rng, args, size)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        optimizer.step()
        window.append((loss.item(), miou))
        elapsed = time.monotonic() - start
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            mean_loss, mean_miou = np.mean(window, axis=0)
            log("train_step", step=step + 1, loss=round(float(mean_loss), 4),
                miou=round(float(mean_miou), 4), lr=float(f"{learning_rate(step, args):.3g}"),
                elapsed_s=round(elapsed, 1))
            window = []
        if elapsed > args.max_minutes * 60:
            log("stopped_early", step=step + 1, reason="max_minutes")
            break
    steps_done, mean_loss = step + 1, np.mean(window or [(loss.item(), 0)], axis=0)[0]
    train_seconds = time.monotonic() - start
    sam.eval()
    miou = held_out_miou(sam, args.seed)
    save(sam, args, argv, steps_done, train_seconds, miou, float(mean_loss))


def save(sam, args, argv, steps_done, train_seconds, miou, final_loss):
    """Write the float16 state dict and its provenance JSON next to it."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v
                for k, v in sam.state_dict().items()}, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    provenance = {
        "script": "scripts/train_sam_tiny.py",
        "command": "python -m scripts.train_sam_tiny " + " ".join(argv or sys.argv[1:]),
        "seed": args.seed,
        "data": "scripts/scenes.py generate_scene(rng, 256, 256), fresh scenes every step, "
                "rng = numpy.random.default_rng(seed)",
        "hyperparameters": {k: v for k, v in vars(args).items() if k != "out"},
        "steps": steps_done,
        "scenes_seen": steps_done * args.images,
        "train_wall_time_s": round(train_seconds, 1),
        "final_train_loss": round(final_loss, 4),
        "held_out_point_miou": round(miou, 4),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "sha256": digest,
    }
    args.out.with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    log("saved", path=str(args.out), sha256=digest, held_out_point_miou=round(miou, 4),
        steps=steps_done, train_wall_time_s=round(train_seconds, 1))


if __name__ == "__main__":
    main()
