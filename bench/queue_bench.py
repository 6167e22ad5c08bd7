"""Throughput and per-job overhead of the job API: embedded mode against broker mode
(Celery workers over Redis) with 1 and 2 workers, on the bundled sam_tiny.

Starts everything itself on loopback (redis-server, uvicorn, `python -m app worker`)
and stops it afterwards. For each setup it measures:
- a burst: --jobs jobs submitted at once to POST /jobs; images per minute from the
  first submit to the last job seen final;
- single jobs (--singles, queue empty): POST /segment's round trip minus the job's
  own `completed` time (upload + queueing + result fetch), and from the job record:
  enqueue to start (`started_at - created_at`).

    python -m bench.queue_bench                  # about 3 minutes on 2 cores
    python -m bench.queue_bench --jobs 8 --out bench/results/queue.json
"""

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import requests
from PIL import Image

from bench.bench_support import generated_image

REPO = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not up after {timeout}s")


def _spawn(stack: ExitStack, args: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = stack.enter_context(open(log, "w"))
    process = subprocess.Popen(args, cwd=log.parent, env={**os.environ, "PYTHONPATH": str(REPO), **env},
                               stdout=out, stderr=subprocess.STDOUT)
    stack.callback(lambda: (process.terminate(), process.wait(30)))
    return process


def start_setup(stack: ExitStack, workdir: Path, workers: int, threads: int | None) -> str:
    """Start one setup (0 workers: embedded mode); returns the API's URL. `threads`
    bounds each model process's torch threads (OMP_NUM_THREADS)."""
    env = {"DEFAULT_MODEL": "sam_tiny", "RESULTS_DIR": str(workdir / "results"),
           "MAX_QUEUED_JOBS": "64", "LOG_LEVEL": "WARNING",
           **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    if workers:
        port = _port()
        _spawn(stack, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no"], {}, workdir / "redis.log")
        env["BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        for n in range(workers):
            ready = workdir / f"worker{n}.ready"
            _spawn(stack, [sys.executable, "-m", "app", "worker"], {**env, "WORKER_READY_FILE": str(ready)},
                   workdir / f"worker{n}.log")
            _wait(ready.exists, f"worker {n}")
    api_port = _port()
    url = f"http://127.0.0.1:{api_port}"
    _spawn(stack, [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                   "--port", str(api_port)], env, workdir / "api.log")
    _wait(lambda: requests.get(url + "/health/ready", timeout=2).status_code == 200, "API")
    return url


def _final(url: str, job_id: str, poll_s: float) -> tuple[dict, float]:
    while True:
        state = requests.get(f"{url}/jobs/{job_id}", timeout=30).json()
        if state["status"] in ("succeeded", "failed", "cancelled"):
            return state, time.time()
        time.sleep(poll_s)


def burst(url: str, image: bytes, params: dict, jobs: int) -> dict:
    started = time.time()
    ids = [requests.post(url + "/jobs", files={"image": ("b.png", image)}, data=params,
                         timeout=60).json()["job_id"] for _ in range(jobs)]
    states = [_final(url, job_id, 0.1)[0] for job_id in ids]
    wall = time.time() - started
    assert all(s["status"] == "succeeded" for s in states), states
    return {"jobs": jobs, "wall_s": round(wall, 2), "images_per_min": round(jobs * 60 / wall, 1),
            "workers_used": len({s["worker"] for s in states})}


def singles(url: str, image: bytes, params: dict, count: int) -> dict:
    segment_overhead, enqueue_to_start, job_ms = [], [], []
    for _ in range(count):
        begun = time.time()
        body = requests.post(url + "/segment", files={"image": ("s.png", image)}, data=params,
                             timeout=120).json()
        total_ms = (time.time() - begun) * 1000
        segment_overhead.append(total_ms - body["timings"]["completed"])
        job_ms.append(body["timings"]["completed"])
        job_id = requests.post(url + "/jobs", files={"image": ("s.png", image)}, data=params,
                               timeout=60).json()["job_id"]
        state, _ = _final(url, job_id, 0.02)
        created, start = (datetime.fromisoformat(state[k]) for k in ("created_at", "started_at"))
        enqueue_to_start.append((start - created).total_seconds() * 1000)
    return {"job_ms": round(statistics.median(job_ms), 1),
            "segment_overhead_ms": round(statistics.median(segment_overhead), 1),
            "enqueue_to_start_ms": round(statistics.median(enqueue_to_start), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=12, help="jobs per burst (default 12)")
    parser.add_argument("--singles", type=int, default=5, help="single jobs per setup (default 5)")
    parser.add_argument("--points-per-side", type=int, default=16, help="generator grid (default 16)")
    parser.add_argument("--size", default="320x240", help="image WxH (default 320x240)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    buffer = io.BytesIO()
    Image.fromarray(generated_image(width, height)).save(buffer, format="PNG")
    params = {"points_per_side": str(args.points_per_side)}
    rows = {}
    setups = (("embedded", 0, None), ("broker, 1 worker", 1, None), ("broker, 2 workers", 2, None),
              ("broker, 2 workers, 1 torch thread each", 2, 1))
    for name, workers, threads in setups:
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            print(f"== {name}: starting", flush=True)
            url = start_setup(stack, Path(tmp), workers, threads)
            rows[name] = {**burst(url, buffer.getvalue(), params, args.jobs),
                          **singles(url, buffer.getvalue(), params, args.singles)}
            print(f"   {rows[name]}", flush=True)
    print(f"\nsam_tiny, {args.size}, points_per_side={args.points_per_side}, {os.cpu_count()} cores\n")
    print("| setup | burst images/min | workers used | job (median ms) | /segment overhead (ms) | enqueue to start (ms) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['images_per_min']} | {r['workers_used']} | {r['job_ms']} | "
              f"{r['segment_overhead_ms']} | {r['enqueue_to_start_ms']} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
