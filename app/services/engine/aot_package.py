"""Compiled parts kept as AOTInductor packages, so a restart neither traces nor runs them.

torch.compile caches its kernels on disk, but a new process still traces the model
again (Dynamo) and must run each part once before a request is fast: about 13 s for
vit_b on 2 CPU cores. An AOTInductor package (torch.export, then inductor ahead of
time) is a shared library that loads in under a second, and its first call already
runs at steady speed, so a restart that finds every part's package needs no warm-up
forward at all (docs/performance.md, "Warm restart"). Packages hold no weights: the
loaded model's own tensors are handed to them, so neither disk nor memory holds the
weights twice.

A part's package is built on its first call and stored under a folder whose name
hashes everything the compiled code depends on (`package_key`). If building or loading
fails, the part runs through torch.compile (then eager) instead, with a warning; a
failed build leaves `<part>.failed` (the error) beside it, so later starts do not pay
for trying again. `fast` is packaged too because its parts hold bf16 weights and run
without autocast: torch 2.14's AOTInductor cannot compile bf16 autocast regions.
"""

import ctypes
import gc
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import segment_anything.modeling
import torch
from torch import nn

from app.core.logging import get_logger
from app.services.engine import attention, decoder, factored_decoder, low_rank
from app.services.engine.precision import CompiledOrEager

log = get_logger(__name__)

# The code a package freezes: the model's own, the engine's rearrangements of it, and
# how this module builds packages.
_TRACED_CODE = (Path(segment_anything.modeling.__file__).parent,
                *(Path(module.__file__) for module in (attention, decoder, factored_decoder,
                                                       low_rank)),
                Path(__file__))


def package_key(device: str, *facts: object) -> str:
    """A folder name for packages built from `facts` (model, checkpoint, precision,
    batch size) on `device`'s kind of hardware, with this torch and the traced code:
    any change makes a new one, so stale compiled code is never loaded."""
    digest = hashlib.sha256(repr((facts, _hardware(device), torch.__version__)).encode())
    for source in _TRACED_CODE:
        for path in sorted(source.glob("*.py")) if source.is_dir() else [source]:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _hardware(device: str) -> str:
    # Kernels are built for one instruction set (AVX512 here): a cache folder shared
    # with another kind of machine must not hand them over.
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} {torch.cuda.get_device_capability(device)}"
    return f"cpu {torch.backends.cpu.get_cpu_capability()}"


def _input_spec(args: tuple) -> str:
    # A package runs only the shapes it was built for and checks nothing itself.
    return repr([(tuple(a.shape), a.dtype, a.device) for a in args])


class _Traced(nn.Module):
    """`fn` (a module or a module's method) as one module whose parameters are
    `owner`'s, which is what torch.export takes."""

    def __init__(self, owner: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.owner, self.fn = owner, fn

    def forward(self, *args):
        return self.fn(*args)


class PackagedPart:
    """Runs a part from its AOTInductor package in `folder` (built on the first call
    if missing); without one (`folder` None, a failed build, other input shapes) it
    runs `fallback`, the part under torch.compile or eagerly."""

    def __init__(self, fallback: CompiledOrEager, owner: nn.Module, folder: Path | None) -> None:
        self.fallback, self.name = fallback, fallback.name
        self._traced = _Traced(owner, fallback.fn)
        self.path = folder / f"{self.name}.pt2" if folder is not None else None
        self.package = None
        self.spec: str | None = None
        self.failure: str | None = None
        if self.path is not None and self._failed_marker.is_file():
            self.failure = self._failed_marker.read_text()

    @property
    def _failed_marker(self) -> Path:
        return self.path.with_suffix(".failed")

    @property
    def is_compiled(self) -> bool:
        return self.package is not None or self.fallback.is_compiled

    def load(self) -> bool:
        """Load the stored package, if there is one; True when the part is ready to
        run at steady speed without a warm-up call."""
        if self.package is None and self.path is not None and self.path.is_file():
            try:
                package = torch._inductor.aoti_load_package(str(self.path))
                weights = {**dict(self._traced.named_buffers(remove_duplicate=False)),
                           **dict(self._traced.named_parameters(remove_duplicate=False))}
                # user_managed: the package reads the model's tensors, no copy; a
                # package needing any other constant fails here, not at a request.
                package.load_constants({name: weights[name] for name in
                                        package.get_constant_fqns()},
                                       check_full_update=True, user_managed=True)
                self.spec = package.get_metadata()["input_spec"]
                self.package = package
            except Exception as exc:  # noqa: BLE001 - a bad file is rebuilt, never fatal
                log.warning("aot_package_load_failed", part=self.name, path=str(self.path),
                            error=repr(exc)[:500])
        return self.package is not None

    def __call__(self, *args):
        if (self.package is None and self.path is not None and self.failure is None
                and not self.load()):
            self._build(args)
        if self.package is not None and _input_spec(args) == self.spec:
            return self.package(*args)
        return self.fallback(*args)

    def _build(self, args: tuple) -> None:
        """Export the part for `args`' shapes, compile it ahead of time, store it
        (atomically: another process may be loading the same path) and load it."""
        spec = _input_spec(args)
        partial = self.path.with_name(f"{self.name}.{os.getpid()}.partial.pt2")
        # Compiling takes about a minute a part on a small CPU, once: say so, or a first
        # start looks hung.
        log.info("aot_package_building", part=self.name, path=str(self.path),
                 message="compiling once ahead of time; later starts load the package")
        try:
            # strict: Dynamo's tracer (the non-strict one fails on the encoder's
            # relative-position einsum).
            exported = torch.export.export(self._traced, args, strict=True)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch._inductor.aoti_compile_and_package(
                exported, package_path=str(partial),
                inductor_configs={"aot_inductor.metadata": {"input_spec": spec},
                                  "aot_inductor.package_constants_in_so": False})
            del exported  # its graph is garbage now: let `_return_freed_memory` free it
            os.replace(partial, self.path)
        except Exception as exc:  # noqa: BLE001 - any failure leaves torch.compile to it
            partial.unlink(missing_ok=True)
            self.failure = repr(exc)[:500]
            log.warning("aot_package_failed_using_compile", part=self.name,
                        error=self.failure)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._failed_marker.write_text(self.failure)
            except OSError:
                pass  # a read-only cache folder costs the next start another try, no more
            return
        log.info("aot_package_built", part=self.name, path=str(self.path))
        _return_freed_memory()
        if not self.load():
            self.failure = "the package just built did not load"


def _return_freed_memory() -> None:
    """Hand the compiler's freed memory back to the system (glibc keeps it otherwise),
    so the next part's build and the requests start lower: a first start builds three
    parts in the serving process."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim
