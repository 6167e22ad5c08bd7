"""Which numeric precision mask generation runs in, and compiling with a safe fallback.

PRECISION=exact runs fp32 and matches the stock generator. PRECISION=fast runs in
bf16 (SAM 1: the image encoder holds bf16 weights and fuses its attention, the point
decoder stays fp32; SAM 2.1: encoder and decoder under bf16 autocast) where bf16 is
native: CUDA devices of compute capability 8.0 or newer, and CPUs with AMX-BF16 or
AVX512-BF16. Elsewhere (plain AVX2 CPUs, pre-Ampere GPUs that emulate bf16) matrix
products run slower in bf16 than in fp32, so it falls back to exact and records why.

PRECISION=auto picks fast only where fast's speed and its agreement with the stock
masks have been measured to pay (docs/performance.md): CUDA capability >= 8.0 and
CPUs with AMX-BF16 (`_AUTO_FAST_CPU_FLAGS`) for every model; CPUs with AVX512-BF16 but
no AMX (AMD Zen 4) for the models measured faster there (`_AUTO_FAST_AVX512_BF16_MODELS`);
exact everywhere else.
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
# Where auto may choose fast (docs/performance.md). AMX: measured to pay.
_AUTO_FAST_CPU_FLAGS = ("amx_bf16",)
# AVX512-BF16 without AMX (AMD Zen 4): bf16 products run about 2x fp32, not AMX's 8x or
# more, so fast pays only where the big matrix products dominate. auto picks it for the
# models whole generations were measured faster in, agreement held; others stay exact.
_AUTO_FAST_AVX512_BF16_MODELS = frozenset({"vit_b", "sam2.1_hiera_tiny", "sam2.1_hiera_small"})
_MIN_CUDA_CAPABILITY = (8, 0)  # Ampere: first generation with bf16 tensor cores


@dataclass(frozen=True)
class PrecisionChoice:
    """The mode actually used, why it is not the one asked for (if it is not), and
    the rule that chose it (GET /info says it: `auto` is otherwise a guess)."""

    mode: Literal["exact", "fast"]
    fallback_reason: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Bf16Support:
    """What a device offers: native bf16 (fast allowed), and whether fast's agreement
    was measured on this kind of device (auto allowed)."""

    native: bool
    measured: bool  # for every model
    evidence: str
    measured_models: frozenset[str] = frozenset()  # or for these only

    def measured_for(self, model_type: str) -> bool:
        return self.measured or model_type in self.measured_models


def cpu_flags() -> list[str]:
    """/proc/cpuinfo's words (its flags among them); empty where there is no such file."""
    try:
        return Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []


def bf16_support(device: torch.device) -> Bf16Support:
    """Whether bf16 matrix products are native (faster than fp32) here, and the evidence."""
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        # including_emulation=False: pre-Ampere GPUs report bf16 "supported" by emulation.
        native = (torch.cuda.is_bf16_supported(including_emulation=False)
                  and capability >= _MIN_CUDA_CAPABILITY)
        return Bf16Support(native, native, f"cuda capability {capability}, native bf16: {native}")
    flags = cpu_flags()
    found = [f for f in _CPU_BF16_FLAGS if f in flags]
    if not found:
        return Bf16Support(False, False, (
            f"cpu has none of {', '.join(_CPU_BF16_FLAGS)} "
            f"(torch cpu capability {torch.backends.cpu.get_cpu_capability()})"))
    measured = any(f in _AUTO_FAST_CPU_FLAGS for f in found)
    return Bf16Support(True, measured, "cpu flags: " + ", ".join(found),
                       _AUTO_FAST_AVX512_BF16_MODELS)


def choose_precision(requested: Precision, device: torch.device, model_type: str,
                     support: Callable[[torch.device], Bf16Support] = bf16_support,
                     ) -> PrecisionChoice:
    """Resolve PRECISION for this device and model: `fast` needs native bf16, `auto`
    also needs fast's gain and agreement measured on this kind of device (and model)."""
    if requested == "exact":
        return PrecisionChoice("exact", reason="PRECISION=exact")
    found = support(device)
    if found.native and requested == "fast":
        return PrecisionChoice("fast", reason=f"PRECISION=fast; bf16 is native: {found.evidence}")
    if found.native and found.measured_for(model_type):
        return PrecisionChoice("fast", reason=(
            f"PRECISION=auto; fast's gain and agreement are measured for {model_type} "
            f"on {device.type} with {found.evidence}"))
    if not found.native:
        reason = f"bf16 is not native on {device.type}: {found.evidence}"
    else:
        reason = (f"fast's gain and agreement are not measured for {model_type} "
                  f"on {device.type} with {found.evidence}")
    if requested == "fast":
        log.warning("precision_fallback", requested=requested, mode="exact", reason=reason)
    return PrecisionChoice("exact", reason, f"PRECISION={requested}; {reason}")


def use_compile_cache(cache_dir: Path) -> None:
    """Keep inductor's compiled kernels under `cache_dir`, so a restart reuses them.

    Inductor reads the variable at each compilation, but writes its /tmp default into
    it the first time anything asks (importing segment_anything already does), so it
    is overwritten here rather than set only when absent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir.resolve())
    torch._inductor.config.fx_graph_cache = True


# What compiling can raise; anything else (a CUDA OOM, a shape error) is the model's
# own failure, and running eagerly would hide it or raise it again.
COMPILE_ERRORS: tuple[type[BaseException], ...] = (
    torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError,
    torch._inductor.exc.CppCompileError, torch._inductor.exc.LoweringException)


class CompiledOrEager:
    """Calls `torch.compile(fn)`; if compiling fails (no C compiler, an unsupported
    platform or operator), logs it once and uses `fn` eagerly from then on. Errors
    of the computation itself (out of memory, bad input) propagate."""

    def __init__(self, fn: Callable, name: str, enabled: bool) -> None:
        self.fn, self.name = fn, name
        self.compiled = torch.compile(fn, dynamic=False) if enabled else None
        self.failure: str | None = None

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except COMPILE_ERRORS as exc:
                if _caused_by_oom(exc) or isinstance(exc, torch._dynamo.exc.TorchRuntimeError):
                    raise  # the computation failed while tracing: eager would fail too
                self.compiled, self.failure = None, repr(exc)[:500]
                log.warning("compile_failed_using_eager", part=self.name, error=self.failure)
        return self.fn(*args)

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None


def _caused_by_oom(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, torch.cuda.OutOfMemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
