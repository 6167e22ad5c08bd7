"""The one interface every model family's engine offers, and the one class that offers it.

The rest of the service holds a `ModelEngine` and never asks which family it got:
`generate` makes every object of an image, `prompt` one object per prompt, and
`parameters` says which request parameters the family takes, with its defaults (the
signatures of its generators, so names and defaults have one owner each).
"""

import inspect
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from app.schemas.prompts import Prompt
from app.services.engine.records import MaskRecord

BatchProgress = Callable[[int, int], None]


class AutomaticGenerator(Protocol):
    def generate(self, image: np.ndarray, on_batch: BatchProgress | None = None,
                 ) -> list[MaskRecord]: ...


class PromptedGenerator(Protocol):
    def generate(self, image: np.ndarray, prompts: list[Prompt],
                 on_batch: BatchProgress | None = None) -> list[MaskRecord]: ...


class ModelEngine(Protocol):
    family: str
    compiled: bool
    runtime: Any  # the loaded model prepared for generation (benches read its device)

    @property
    def parameters(self) -> dict[str, Any]:
        """Every generation parameter this family takes, with its default."""

    def automatic(self, **params: Any) -> AutomaticGenerator:
        """Every object of an image, with these generator parameters."""

    def prompted(self, **params: Any) -> PromptedGenerator:
        """One object per prompt; parameters that tune the point grid are not used."""

    def generate(self, image: np.ndarray, params: dict[str, Any],
                 on_batch: BatchProgress | None = None) -> list[MaskRecord]:
        """Every object of the image: `automatic(**params).generate(image, on_batch)`."""

    def prompt(self, image: np.ndarray, prompts: list[Prompt], params: dict[str, Any],
               on_batch: BatchProgress | None = None) -> list[MaskRecord]:
        """One object per prompt: `prompted(**params).generate(image, prompts, on_batch)`."""

    def warm_up(self) -> float: ...


def signature_defaults(*generators: type) -> dict[str, Any]:
    """Keyword arguments (and defaults) of the generators' constructors, runtime excluded."""
    out: dict[str, Any] = {}
    for cls in generators:
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name not in ("self", "runtime", "point_grids") and p.kind is p.POSITIONAL_OR_KEYWORD:
                out.setdefault(name, p.default)
    return out


def prompt_kwargs(params: dict[str, Any], generator: type) -> dict[str, Any]:
    """The subset of `params` a prompted generator takes (grid parameters do nothing there)."""
    names = signature_defaults(generator)
    return {k: v for k, v in params.items() if k in names}


class Engine:
    """A family's two generators over one loaded runtime. Every family's engine is one of
    these: what differs between families is data (`model.families.FAMILIES`)."""

    def __init__(self, family: str, runtime: Any, automatic: type, prompted: type) -> None:
        self.family, self.runtime = family, runtime
        self._automatic, self._prompted = automatic, prompted

    @property
    def compiled(self) -> bool:
        return self.runtime.compiled

    @property
    def parameters(self) -> dict[str, Any]:
        return signature_defaults(self._automatic, self._prompted)

    def automatic(self, **params: Any) -> AutomaticGenerator:
        return self._automatic(self.runtime, **params)

    def prompted(self, **params: Any) -> PromptedGenerator:
        return self._prompted(self.runtime, **prompt_kwargs(params, self._prompted))

    def generate(self, image, params, on_batch=None):
        return self.automatic(**params).generate(image, on_batch)

    def prompt(self, image, prompts, params, on_batch=None):
        return self.prompted(**params).generate(image, prompts, on_batch)

    def warm_up(self) -> float:
        return self.runtime.warm_up()
