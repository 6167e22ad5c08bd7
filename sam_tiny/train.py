"""Train the sam_tiny model from scratch on generated scenes and write app/weights/sam_tiny.pth.

    make sam-tiny-weights                                             # the shipped weights, ~56 min
    python -m sam_tiny.train --out /tmp/phase1.pth            # phase 1 alone, ~46 min
    python -m sam_tiny.train --steps 50 --out /tmp/try.pth    # a smoke run

The shipped weights are two runs of this script: the defaults (phase 1), then a short
phase 2 from those weights with the pixel loss at full size (the Makefile has the flags).

Every step draws fresh scenes (sam_tiny/scenes.py), samples single-point prompts and trains
the whole SAM the way the paper does for one-point prompts (see sam_tiny/objective.py):
three mask outputs, only the one with the lowest pixel + dice loss backpropagated, and the IoU
head regressed (MSE) onto the true IoU of every output, so that SamAutomaticMaskGenerator's
filters (predicted_iou, stability_score) mean what they say. Points on the scene background
are trained to predict IoU 0, so the generator drops background masks.
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

from app.services.model.registry import BUNDLED_WEIGHTS_DIR, build_sam_tiny
from sam_tiny.objective import held_out_miou, train_step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3600, help="optimizer steps")
    parser.add_argument("--images", type=int, default=4, help="scenes per step")
    parser.add_argument("--prompts", type=int, default=12, help="point prompts per scene")
    parser.add_argument("--loss-size", type=int, default=128, help="side of the mask loss grid")
    parser.add_argument("--background-share", type=float, default=0.15,
                        help="share of prompts placed on the background (trained to IoU 0)")
    parser.add_argument("--mask-loss", choices=("focal", "bce"), default="bce",
                        help="pixel loss next to dice; focal stayed at empty masks far longer")
    parser.add_argument("--margin", type=float, default=1.0,
                        help="logit margin of the pixel loss (the stability score uses +-1)")
    parser.add_argument("--lr", type=float, default=1.2e-4, help="peak AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads; use 1 when other jobs share a 2-core machine: "
                             "two OpenMP threads then wait on each other (measured 10x slower)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, scenes and prompts")
    parser.add_argument("--max-minutes", type=float, default=58.0,
                        help="stop early (and say so) if training runs longer than this")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--init-checkpoint", type=Path, default=None,
                        help="start from these weights instead of random ones (a second phase)")
    parser.add_argument("--out", type=Path, default=BUNDLED_WEIGHTS_DIR / "sam_tiny.pth")
    return parser.parse_args(argv)


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
    init = args.init_checkpoint
    parent = json.loads(init.with_suffix(".json").read_text()) if init else None
    sam = build_sam_tiny(str(init) if init else None)
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
            mean_loss, mean_miou = np.mean(window[-args.log_every:], axis=0)
            log("train_step", step=step + 1, loss=round(float(mean_loss), 4),
                miou=round(float(mean_miou), 4), lr=float(f"{learning_rate(step, args):.3g}"),
                elapsed_s=round(elapsed, 1))
        if elapsed > args.max_minutes * 60:
            log("stopped_early", step=step + 1, reason="max_minutes")
            break
    steps_done, mean_loss = step + 1, np.mean(window[-args.log_every:], axis=0)[0]
    train_seconds = time.monotonic() - start
    sam.eval()
    miou = held_out_miou(sam)
    save(sam, args, argv, steps_done, train_seconds, miou, float(mean_loss), parent)


def save(sam, args, argv, steps_done, train_seconds, miou, final_loss, parent=None):
    """Write the float16 state dict and its provenance JSON next to it."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v
                for k, v in sam.state_dict().items()}, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    provenance = {
        "script": "sam_tiny/train.py",
        "command": "python -m sam_tiny.train " + " ".join(argv or sys.argv[1:]),
        "seed": args.seed,
        "data": "sam_tiny/scenes.py generate_scene(rng, 256, 256), fresh scenes every step, "
                "rng = numpy.random.default_rng(seed)",
        "hyperparameters": {k: str(v) if isinstance(v, Path) else v
                            for k, v in vars(args).items() if k != "out"},
        "steps": steps_done,
        "scenes_seen": steps_done * args.images,
        "train_wall_time_s": round(train_seconds, 1),
        "final_train_loss": round(final_loss, 4),
        "held_out_point_miou": round(miou, 4),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "sha256": digest,
        "previous_phase": parent,  # provenance of --init-checkpoint, if any
    }
    args.out.with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    log("saved", path=str(args.out), sha256=digest, held_out_point_miou=round(miou, 4),
        steps=steps_done, train_wall_time_s=round(train_seconds, 1))


if __name__ == "__main__":
    main()
