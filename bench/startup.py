"""Start-up cost: `prepare_model(warm_up=True)` in a fresh process, twice on one
cache folder: the first compiles (cold), the second is a restart (warm). Then two
requests' model work (encode a random image, decode one batch of points): the first
after "ready" should take no longer than the second.

    python -m bench.amg_bench --startup --models vit_b --modes exact,fast
    python -m bench.startup --model vit_b --mode exact --cache DIR   # one child
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from app.core.config import Settings
from bench.bench_models import TRAINED_SAM_TINY, bench_manager, seeded_checkpoint


def child(model: str, mode: str, cache: Path, device: str) -> dict:
    checkpoint = (TRAINED_SAM_TINY if model == "sam_tiny"
                  else seeded_checkpoint(model, 0, cache / "weights"))
    started = time.perf_counter()
    manager = bench_manager(model, checkpoint, device, mode, True, cache,
                            Settings.model_fields["DECODE_BATCH_SIZE"].default, warm_up=True)
    runtime = manager.runtime()
    ready = round(time.perf_counter() - started, 2)
    return {"model": model, "mode": manager.precision, "compiled": runtime.compiled,
            "load_s": manager.load_seconds, "warm_up_s": runtime.warm_up_seconds,
            "prepare_model_s": ready, "first_request_s": _request_seconds(runtime),
            "second_request_s": _request_seconds(runtime), "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> int:
    """The process's peak resident memory (VmHWM): weights, compiled code, one request."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def _request_seconds(runtime) -> float:
    """One request's model work: encode a random 1024x768 image, decode a full batch."""
    image = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), np.uint8)
    points = np.random.default_rng(1).uniform(0, 768, (runtime.batch_size, 2))
    started = time.perf_counter()
    state, _ = runtime.embed(image)
    runtime.decode(state, points, image.shape[:2])
    return round(time.perf_counter() - started, 2)


def cold_and_warm(models: list[str], modes: list[str], device: str,
                  cache_root: Path | None = None) -> list[dict]:
    """For each (model, mode): a cold start, then a restart on the same cache (a new
    folder under `cache_root`, which the main benchmark can then reuse)."""
    rows = []
    for model in models:
        for mode in modes:
            cache = Path(tempfile.mkdtemp(prefix=f"startup_{model}_{mode}_", dir=cache_root))
            for start in ("cold", "warm"):
                out = subprocess.run([sys.executable, "-m", "bench.startup", "--model", model,
                                      "--mode", mode, "--cache", str(cache), "--device", device],
                                     capture_output=True, text=True, check=True)
                rows.append({"start": start, **json.loads(out.stdout.strip().splitlines()[-1])})
                print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | mode | start | compiled | load s | warm-up s | prepare_model s "
             "| first request s | second request s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['mode']} | {r['start']} | {r['compiled']} | {r['load_s']} "
              f"| {r['warm_up_s']} | {r['prepare_model_s']} | {r['first_request_s']} "
              f"| {r['second_request_s']} | {r['peak_rss_mb']} |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--mode", default="exact", choices=["exact", "fast"])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(json.dumps(child(args.model, args.mode, args.cache, args.device)))
