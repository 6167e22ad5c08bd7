"""One model per process (any family): where its checkpoint lives, loading it once onto
the right device, its engine, and unloading / rebuilding it when generation goes wrong.

Loading is blocking (torch); callers run it in a worker thread.
"""

import threading
import time
from pathlib import Path

import torch
from torch import nn

from app.core.config import Settings
from app.core.errors import ModelLoadFailed
from app.core.logging import get_logger
from app.services.engine.aot_package import package_key
from app.services.engine.interface import AutomaticGenerator, ModelEngine, PromptedGenerator
from app.services.engine.precision import choose_precision, use_compile_cache
from app.services.model.checkpoint import checkpoint_path
from app.services.model.families import FAMILIES
from app.services.model.registry import MODEL_REGISTRY

log = get_logger(__name__)


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadFailed("DEVICE=cuda but no CUDA device is available",
                              {"remedies": ["set DEVICE=cpu or DEVICE=auto"]})
    return requested


def release_cuda_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelManager:
    """Holds the loaded model; thread-safe lazy load, unload and rebuild."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_type = settings.DEFAULT_MODEL
        self.family = FAMILIES[MODEL_REGISTRY[self.model_type].family]
        self.device = resolve_device(settings.DEVICE)
        self.checkpoint = checkpoint_path(self.model_type, settings)
        self.load_seconds: float | None = None
        self._sam: nn.Module | None = None
        self._engine: ModelEngine | None = None
        self._engine_model: nn.Module | None = None
        self._lock = threading.Lock()
        # Decided once: metadata.json and GET /info report the mode actually used.
        self.precision_choice = choose_precision(settings.PRECISION, torch.device(self.device),
                                                 self.model_type)
        self.compile_model = settings.COMPILE_MODEL == "on" or (
            settings.COMPILE_MODEL == "auto" and self.model_type != "sam_tiny")
        if self.compile_model:
            use_compile_cache(settings.MODEL_CACHE_DIR / "torch_compile")

    @property
    def precision(self) -> str:
        """`exact` or `fast`: the precision masks are generated in."""
        return self.precision_choice.mode

    @property
    def precision_fallback_reason(self) -> str | None:
        """Why PRECISION=fast/auto runs exact here (None when it does not fall back)."""
        return self.precision_choice.fallback_reason

    @property
    def precision_reason(self) -> str:
        """The PRECISION setting and the rule that chose the mode."""
        return self.precision_choice.reason

    @property
    def loaded(self) -> bool:
        return self._sam is not None

    def model(self) -> nn.Module:
        """The loaded model; loads it on first use. A failed load is retried once
        after freeing CUDA memory, then raises ModelLoadFailed."""
        with self._lock:
            if self._sam is None:
                try:
                    self._sam = self._load()
                except ModelLoadFailed:
                    raise
                except Exception as first:  # noqa: BLE001 - retried once, then reported
                    log.warning("model_load_retry", error=repr(first))
                    release_cuda_memory()
                    try:
                        self._sam = self._load()
                    except Exception as exc:
                        raise ModelLoadFailed(
                            f"Could not load {self.model_type} from {self.checkpoint}: {exc}",
                            {"model_type": self.model_type, "checkpoint": str(self.checkpoint)},
                        ) from exc
            return self._sam

    def engine(self) -> ModelEngine:
        """The model's family engine over the loaded model (compiled on first use)."""
        model = self.model()
        with self._lock:
            if self._engine is None or self._engine_model is not model:
                self._engine_model = model
                self._engine = self.family.engine(model, self.precision_choice,
                                                  self.compile_model,
                                                  self.settings.DECODE_BATCH_SIZE,
                                                  self.package_dir())
            return self._engine

    def package_dir(self) -> Path | None:
        """Where this checkpoint's parts, compiled ahead of time for this precision,
        device and batch size, are stored (None: not compiling). The checkpoint is
        known by size and modification time: hashing it would cost seconds a start."""
        if not self.compile_model:
            return None
        stat = self.checkpoint.stat()
        key = package_key(self.device, self.model_type, stat.st_size, stat.st_mtime_ns,
                          self.precision, self.settings.DECODE_BATCH_SIZE)
        return (self.settings.MODEL_CACHE_DIR / "aot_packages"
                / f"{self.model_type}-{self.precision}-{key}")

    def runtime(self):
        """The engine's runtime: the loaded model prepared for generation (benches use it)."""
        return self.engine().runtime

    def generator(self, **params) -> AutomaticGenerator:
        """The family's automatic generator over the shared runtime, taking its
        generator's arguments (SamAutomaticMaskGenerator's or SAM2AutomaticMaskGenerator's);
        it keeps no per-image state."""
        return self.engine().automatic(**params)

    def prompted_generator(self, **params) -> PromptedGenerator:
        """The prompted generator (one object per prompt) over the same shared runtime."""
        return self.engine().prompted(**params)

    def warm_up(self) -> float:
        """Load, compile and run the model once, so the first request is fast;
        returns the seconds it took. Compiled kernels are cached on disk."""
        return self.engine().warm_up()

    def unload(self) -> None:
        with self._lock:
            self._sam = None
            self._engine = None
        release_cuda_memory()
        log.info("model_unloaded", model_type=self.model_type)

    def _load(self) -> nn.Module:
        if not self.checkpoint.is_file():
            raise ModelLoadFailed(
                f"Checkpoint for {self.model_type} not found at {self.checkpoint}",
                {"checkpoint": str(self.checkpoint)},
            )
        started = time.monotonic()
        sam = MODEL_REGISTRY[self.model_type].builder()
        self.family.load(sam, self.checkpoint)
        sam.to(self.device).eval()
        self.load_seconds = round(time.monotonic() - started, 3)
        log.info("model_load_completed", model_type=self.model_type, device=self.device,
                 checkpoint=str(self.checkpoint), seconds=self.load_seconds)
        return sam
