"""Write a sam_tiny checkpoint with seeded random weights.

Random weights give noise masks, but they exercise the real segment_anything
code end to end: tests and offline smoke runs use them.

    python -m sam_tiny.random_checkpoint OUT.pth [--seed 0]
"""

import argparse
import hashlib
from pathlib import Path

import torch

from app.services.model.registry import build_sam_tiny


def make_tiny_checkpoint(out: Path, seed: int = 0) -> str:
    """Save seeded random sam_tiny weights to `out`; return their sha256."""
    torch.manual_seed(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_sam_tiny().state_dict(), out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the .pth file")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the weights")
    args = parser.parse_args()
    sha256 = make_tiny_checkpoint(args.out, args.seed)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {sha256}, seed {args.seed})")


if __name__ == "__main__":
    main()
