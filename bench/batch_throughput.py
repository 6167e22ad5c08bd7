"""Batch throughput: `python -m app segment FOLDER` on N images, embedded (the model in
the CLI's process) against the same batch submitted to W workers over a real
redis-server on loopback (`--broker`), and Redis memory per queued job.

For each setup: the command's wall time (model load or worker hand-off included) and
images per minute over it, plus the median job time from the batch's manifest.jsonl.
Redis memory per queued job: with no worker running, --images jobs are submitted
through the Jobs interface (as the CLI and POST /jobs do) and Redis's `used_memory`
grows by this much per job (the image travels inside the queue message unless the
broker keeps it elsewhere).

    python -m bench.batch_throughput --images 4            # a quick check that it runs
    python -m bench.batch_throughput --images 50 --out bench/results/batch_throughput.json
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import redis
from PIL import Image

from bench.bench_support import generated_image, machine_description
from bench.queue_bench import REPO, _port, _spawn, _wait

ENV = {"DEFAULT_MODEL": "sam_tiny", "LOG_LEVEL": "WARNING", "MAX_QUEUED_JOBS": "100000"}


def write_images(folder: Path, count: int, size: tuple[int, int]) -> int:
    """`count` seeded scenes as PNG files; the size of one, in bytes."""
    folder.mkdir(parents=True)
    for n in range(count):
        Image.fromarray(generated_image(*size, seed=n)).save(folder / f"scene_{n:05d}.png")
    return (folder / "scene_00000.png").stat().st_size


def timed_batch(workdir: Path, images: Path, params: list[str], env: dict) -> dict:
    """Run the CLI batch once; its wall time, images per minute and median job time."""
    out = workdir / "out"
    begun = time.monotonic()
    subprocess.run([sys.executable, "-m", "app", "segment", str(images), "--out", str(out), *params],
                   cwd=workdir, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO), **ENV, **env})
    wall = time.monotonic() - begun
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(line["status"] == "succeeded" for line in lines), lines
    return {"wall_s": round(wall, 2), "images_per_min": round(len(lines) * 60 / wall, 1),
            "job_s_median": round(statistics.median(line["seconds"] for line in lines), 3)}


def start_redis(stack: ExitStack, workdir: Path) -> str:
    port = _port()
    _spawn(stack, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no"], {}, workdir / "redis.log")
    client = redis.Redis(port=port)
    _wait(client.ping, "redis")
    return f"redis://127.0.0.1:{port}/0"


def broker_batch(workdir: Path, images: Path, params: list[str], workers: int) -> dict:
    with ExitStack() as stack:
        url = start_redis(stack, workdir)
        env = {**ENV, "BROKER_URL": url, "RESULTS_DIR": str(workdir / "results"),
               "OMP_NUM_THREADS": "1"}
        for n in range(workers):
            ready = workdir / f"worker{n}.ready"
            _spawn(stack, [sys.executable, "-m", "app", "worker"],
                   {**env, "WORKER_READY_FILE": str(ready)}, workdir / f"worker{n}.log")
            _wait(ready.exists, f"worker {n}")
        return timed_batch(workdir, images, params, env)


def redis_bytes_per_queued_job(workdir: Path, images: Path, count: int) -> float:
    """Submit `count` jobs with no worker running; Redis's memory growth per job, counted
    from after a first job (which opens the front's connections and creates the queue,
    costs paid once, not per job)."""
    from app.core.config import Settings
    from app.core.logging import setup_logger
    from app.schemas import GenerationParams
    from app.services.intake import job_request
    from app.services.jobs import start_jobs

    setup_logger("WARNING", "console")
    with ExitStack() as stack:
        url = start_redis(stack, workdir)
        client = redis.Redis.from_url(url)
        settings = Settings(**{**ENV, "BROKER_URL": url, "RESULTS_DIR": str(workdir / "results")})
        paths = sorted(images.iterdir())[:count + 1]

        async def submit_all() -> float:
            jobs = await start_jobs(settings)
            before = None
            for path in paths:
                await jobs.submit(job_request(path.read_bytes(), path.name, GenerationParams(),
                                              None, settings))
                before = before or client.info("memory")["used_memory"]
            return (client.info("memory")["used_memory"] - before) / (len(paths) - 1)

        return asyncio.run(submit_all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50, help="images in the batch (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="workers in broker mode (default 2)")
    parser.add_argument("--points-per-side", type=int, default=16, help="generator grid (default 16)")
    parser.add_argument("--size", default="320x240", help="image WxH (default 320x240)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    params = ["--points-per-side", str(args.points_per_side)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        image_bytes = write_images(root / "images", args.images, size)
        rows = {}
        for name, run in (("embedded CLI", lambda w: timed_batch(w, root / "images", params, {})),
                          (f"CLI, {args.workers} workers over Redis",
                           lambda w: broker_batch(w, root / "images", params, args.workers))):
            workdir = root / name.split(",")[0].replace(" ", "-")
            workdir.mkdir()
            print(f"== {name}: {args.images} images", flush=True)
            rows[name] = run(workdir)
            print(f"   {rows[name]}", flush=True)
        (root / "memory").mkdir()
        per_job = redis_bytes_per_queued_job(root / "memory", root / "images", args.images)
    print(f"\n{machine_description()}")
    print(f"sam_tiny, {args.images} images of {args.size} ({image_bytes} bytes as PNG), "
          f"points_per_side={args.points_per_side}\n")
    print("| setup | wall (s) | images/min | job (median s) |\n|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s']} | {r['images_per_min']} | {r['job_s_median']} |")
    print(f"\nRedis memory per queued job: {per_job / 1024:.1f} KiB (image {image_bytes / 1024:.1f} KiB)")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "redis_bytes_per_queued_job": per_job,
                                        "image_bytes": image_bytes, "images": args.images}, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
