"""Which numeric precision mask generation runs in, and compiling with a safe fallback.

PRECISION=exact runs fp32 and matches the stock generator. PRECISION=fast runs the
image encoder and mask decoder under bf16 autocast, but only where bf16 is fast:
CUDA devices that support it, and CPUs with AMX-BF16 or AVX512-BF16. Elsewhere
(plain AVX2 CPUs emulate bf16 matrix products hundreds of times slower than fp32)
it falls back to exact and records why. PRECISION=auto picks fast where supported
and exact otherwise, so it never trades accuracy for nothing.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch

from app.core.logging import get_logger

log = get_logger(__name__)

Precision = Literal["auto", "exact", "fast"]
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class PrecisionChoice:
    """The mode actually used, and why it is not the one asked for (if it is not)."""

    mode: Literal["exact", "fast"]
    fallback_reason: str | None = None


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 matrix products run faster than fp32 here, and the evidence."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"cuda bf16 supported: {ok}"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    found = [f for f in _CPU_BF16_FLAGS if f in flags]
    if found:
        return True, "cpu flags: " + ", ".join(found)
    return False, (f"cpu has none of {', '.join(_CPU_BF16_FLAGS)} "
                   f"(torch cpu capability {torch.backends.cpu.get_cpu_capability()})")


def choose_precision(requested: Precision, device: torch.device,
                     support: Callable[[torch.device], tuple[bool, str]] = bf16_support,
                     ) -> PrecisionChoice:
    """Resolve PRECISION for this device; `fast` without bf16 support falls back."""
    if requested == "exact":
        return PrecisionChoice("exact")
    supported, evidence = support(device)
    if supported:
        return PrecisionChoice("fast")
    reason = f"bf16 is not fast on {device.type}: {evidence}"
    if requested == "fast":
        log.warning("precision_fallback", requested=requested, mode="exact", reason=reason)
    return PrecisionChoice("exact", reason)


def use_compile_cache(cache_dir: Path) -> None:
    """Keep inductor's compiled kernels under `cache_dir`, so a restart reuses them.

    Inductor reads the variable at each compilation, but writes its /tmp default into
    it the first time anything asks (importing segment_anything already does), so it
    is overwritten here rather than set only when absent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir.resolve())
    torch._inductor.config.fx_graph_cache = True


class CompiledOrEager:
    """Calls `torch.compile(fn)`; if compiling or running the compiled code fails (no C
    compiler, unsupported platform), logs it once and uses `fn` eagerly from then on."""

    def __init__(self, fn: Callable, name: str, enabled: bool) -> None:
        self.fn, self.name = fn, name
        self.compiled = torch.compile(fn, dynamic=False) if enabled else None
        self.failure: str | None = None

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eager
                self.compiled, self.failure = None, repr(exc)[:500]
                log.warning("compile_failed_using_eager", part=self.name, error=self.failure)
        return self.fn(*args)

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None
