"""Helpers of bench/amg_bench.py: the generated test image, phase timers, a peak
memory and load sampler, and the markdown table."""

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable

import cv2
import numpy as np
import torch

from app.services.engine.precision import cpu_flags

# The CPU flags that decide matrix-product speed (bf16 and AMX above all), as lscpu names them.
_SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def machine_description() -> str:
    """CPU model and its speed-relevant flags, cores, torch version and the CPU
    capability torch dispatches to."""
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        lines = []
    cpu = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")),
               "unknown CPU")
    flags = cpu_flags()
    has = " ".join(f for f in _SPEED_FLAGS if f in flags) or "-"
    lacks = " ".join(f for f in _SPEED_FLAGS if f not in flags) or "-"
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu} (flags: {has}; lacks: {lacks}), {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads{gpu}, torch {torch.__version__}, "
            f"cpu capability {torch.backends.cpu.get_cpu_capability()}")


def generated_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A seeded scene with something to segment: a gradient, overlapping ellipses and
    rectangles in flat colours, light noise. HWC uint8 RGB."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    image = (60 + 80 * x + 60 * y + np.zeros((1, 1, 3))).astype(np.uint8)
    for _ in range(24):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        a, b = int(rng.integers(width // 30, width // 6)), int(rng.integers(height // 30, height // 6))
        if rng.random() < 0.5:
            cv2.ellipse(image, (cx, cy), (a, b), float(rng.integers(0, 180)), 0, 360, color, -1)
        else:
            cv2.rectangle(image, (cx - a, cy - b), (cx + a, cy + b), color, -1)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


class PhaseTimer:
    """Accumulates wall time spent in wrapped callables, by phase name. On CUDA the
    device is synchronised before the clock stops, so a phase owns its kernels."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.cuda = device is not None and device.type == "cuda"
        self.device = device

    def wrap(self, phase: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.cuda:
                    torch.cuda.synchronize(self.device)
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started
        return timed


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def resource_sampler(device: torch.device, interval_s: float = 0.05):
    """Yields a dict filled on exit with the peak memory during the block (CUDA: peak
    allocated; CPU: peak resident set above the level at entry) and the highest
    1-minute load average seen."""
    result: dict[str, Any] = {}
    stop = threading.Event()
    start_rss, peak = _rss_bytes(), [0, os.getloadavg()[0]]

    def sample() -> None:
        while not stop.wait(interval_s):
            peak[0] = max(peak[0], _rss_bytes() - start_rss)
            peak[1] = max(peak[1], os.getloadavg()[0])

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        if device.type == "cuda":
            result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        else:
            result["peak_memory_mb"] = round(max(peak[0], _rss_bytes() - start_rss) / 2**20, 1)
        result["max_load_1min"] = round(peak[1], 2)


def markdown(report: dict[str, Any]) -> str:
    """The results as a markdown table, one row per (parameter set, generator)."""
    lines = [f"Machine: {report['machine']}", f"Model: {report['model']}; image "
             f"{report['image']}; device {report['device']}", "",
             "| parameters | generator | total s | encoder s | decoder s | rest s | "
             "speed-up | first request s | peak MB | masks | matched IoU (mean/min) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        agreement = row.get("agreement") or {}
        iou = (f"{agreement['mean_matched_iou']:.4f} / {agreement['min_matched_iou']:.4f} "
               f"({agreement['matched']} matched)" if agreement else "reference")
        phases = row["phases_s"]
        lines.append(
            f"| {row['params_name']} | {row['generator']} | {row['total_s']:.1f} | "
            f"{phases.get('encoder', 0):.1f} | {phases.get('decoder', 0):.1f} | "
            f"{phases.get('rest', 0):.1f} | {row.get('speedup', 1.0):.2f}x | "
            f"{row.get('first_request_s') or '-'} | {row['peak_memory_mb']} | {row['masks']} | "
            f"{iou} | {row['max_load_1min']} |")
    for note in report["notes"]:
        lines.append(f"\n- {note}")
    return "\n".join(lines) + "\n"
