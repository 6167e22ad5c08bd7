"""Whole-process memory of a 24 MP job through HTTP: a real uvicorn server per
precision mode, one POST /segment of a generated ~24 MP PNG, and the server's peak
resident set (VmHWM) read from /proc once the answer is in: the upload, decoding,
generation, the overlay, every mask and cut-out, all in one figure.

    python -m bench.http_memory --model vit_b --modes exact,fast --megapixels 24

Random weights (seeded) keep few masks past the default filters, so by default the
filters are off (--points-per-side 16, pred_iou_thresh 0, stability_score_thresh 0):
hundreds of objects, the writer's worst case. Linux only (/proc).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.bench_models import REPO, TRAINED_SAM_TINY, seeded_checkpoint
from bench.megapixels import scene
from app.services.image_processor import encode_png

FILTERS_OFF = {"points_per_side": "16", "pred_iou_thresh": "0", "stability_score_thresh": "0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) // 1024


def one_mode(model: str, mode: str, png: bytes, checkpoint: Path, workdir: Path,
             fields: dict[str, str], compile_model: str) -> dict:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEFAULT_MODEL": model,
           "SAM_CHECKPOINT_PATH": str(checkpoint), "PRECISION": mode, "OFFLINE": "1",
           "COMPILE_MODEL": compile_model, "MODEL_CACHE_DIR": str(workdir / "models"),
           "RESULTS_DIR": str(workdir / f"results_{mode}"), "JOB_TIMEOUT_S": "3600",
           "LOG_FORMAT": "json"}
    with open(workdir / f"server_{mode}.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host",
                                   "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                if server.poll() is not None:
                    raise RuntimeError((workdir / f"server_{mode}.log").read_text()[-2000:])
                try:
                    if requests.get(url + "/health", timeout=2).ok:
                        break
                except requests.RequestException:
                    time.sleep(1)
            ready_mb = _peak_mb(server.pid)
            started = time.perf_counter()
            answer = requests.post(url + "/segment", files={"image": ("big.png", png)},
                                   data=fields, timeout=3600)
            seconds = time.perf_counter() - started
            body = answer.json()
            return {"model": model, "mode": mode, "status": answer.status_code,
                    "objects": body.get("objects_count"), "seconds": round(seconds, 1),
                    "timings_ms": body.get("timings"), "peak_after_start_mb": ready_mb,
                    "peak_mb": _peak_mb(server.pid), "load": os.getloadavg()[0]}
        finally:
            server.terminate()
            server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--modes", default="exact,fast")
    parser.add_argument("--megapixels", type=float, default=24)
    parser.add_argument("--defaults", action="store_true", help="the default filters, not off")
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--workdir", type=Path, help="kept (compile cache reused); default: temporary")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="http_memory_"))
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = (TRAINED_SAM_TINY if args.model == "sam_tiny"
                  else seeded_checkpoint(args.model, 0, workdir / "weights"))
    image = scene(args.megapixels)
    png = encode_png(image)
    rows = []
    for mode in args.modes.split(","):
        row = one_mode(args.model, mode, png, checkpoint, workdir,
                       {} if args.defaults else FILTERS_OFF, args.compile)
        row.update(width=image.shape[1], height=image.shape[0], png_mb=round(len(png) / 2**20, 1))
        print(json.dumps(row), flush=True)
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"http_memory_{args.model}_{args.megapixels:g}mp.json"
    (args.out / name).write_text(json.dumps({"cpu": _cpu(), "rows": rows}, indent=2))


def _cpu() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
