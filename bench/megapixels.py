"""Cost against megapixels: the same generated scene at about 1 MP and 24 MP, one
fresh process per (mode, size) so each peak resident set is its own.

    python -m bench.amg_bench --megapixels            # runs the children below
    python -m bench.megapixels --mode fast --megapixels 24    # one child, prints JSON
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.bench_models import TRAINED_SAM_TINY, bench_manager
from bench.bench_support import resource_sampler

# Filters off so every prompt's mask is scored and upsampled; the default box NMS.
PARAMS = {"points_per_side": 16, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def scene(megapixels: float, seed: int = 0) -> np.ndarray:
    """A sam_tiny scene drawn at ~1 MP (4:3), resized to `megapixels`: the same scene
    at every size."""
    from sam_tiny.scenes import generate_scene
    image, _ = generate_scene(np.random.default_rng(seed), 864, 1152)
    height = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    return cv2.resize(image, (height * 4 // 3, height), interpolation=cv2.INTER_LINEAR)


def child(mode: str, megapixels: float) -> dict:
    """One generation at `megapixels` in this process: seconds, masks, peak memory."""
    image = scene(megapixels)
    with tempfile.TemporaryDirectory() as tmp:
        manager = bench_manager("sam_tiny", TRAINED_SAM_TINY, "cpu", mode, False,
                                Path(tmp), 64)
        engine = manager.generator(**PARAMS)
        engine.generate(scene(0.05))  # first-call costs (allocator, lazy init) out of the way
        with resource_sampler(manager.runtime().device) as used:
            started = time.perf_counter()
            records = engine.generate(image)
            seconds = time.perf_counter() - started
    return {"mode": manager.precision, "requested": mode, "megapixels": megapixels,
            "width": image.shape[1], "height": image.shape[0], "masks": len(records),
            "generate_s": round(seconds, 2), "peak_during_generate_mb": used["peak_memory_mb"],
            "peak_rss_process_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "max_load_1min": used["max_load_1min"]}


def compare(modes: list[str], sizes: list[float]) -> list[dict]:
    """Each (mode, size) in a fresh child process; their JSON results."""
    rows = []
    for mode in modes:
        for megapixels in sizes:
            out = subprocess.run([sys.executable, "-m", "bench.megapixels", "--mode", mode,
                                  "--megapixels", str(megapixels)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| mode | image | masks | generate s | peak during generate MB | "
             "peak RSS of process MB | load |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['width']}x{r['height']} ({r['megapixels']} MP) | "
                     f"{r['masks']} | {r['generate_s']} | {r['peak_during_generate_mb']} | "
                     f"{r['peak_rss_process_mb']} | {r['max_load_1min']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="fast", choices=["exact", "fast"])
    parser.add_argument("--megapixels", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(child(args.mode, args.megapixels)))
