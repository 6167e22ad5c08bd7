"""Model families as data: how a family's checkpoint is loaded and which engine
generates with it. A registry entry names its family; the manager looks it up here,
so nothing else in the service asks which family a model belongs to."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.core.errors import InvalidRequest
from app.schemas.params import GenerationParams
from app.services.engine.generator import MaskEngine
from app.services.engine.interface import Engine, ModelEngine, signature_defaults
from app.services.engine.prompted import PromptedEngine
from app.services.engine.precision import PrecisionChoice
from app.services.engine.runtime import SamRuntime
from app.services.engine.sam2.generator import Sam2MaskEngine
from app.services.engine.sam2.prompted import Sam2PromptedEngine
from app.services.engine.sam2.runtime import Sam2Runtime
from app.services.model.registry import MODEL_REGISTRY
from app.services.model.sam2_weights import load_meta_checkpoint


def _load_sam1(model: nn.Module, path: Path) -> None:
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


@dataclass(frozen=True)
class Family:
    """What differs between model families, and nothing else."""

    name: str
    title: str  # for people: docs, /info
    load: Callable[[nn.Module, Path], None]  # weights from a checkpoint file into a model
    # (model, precision, compile, decode batch size, folder for compiled packages or
    # None) -> the model prepared for generation
    runtime: Callable[[nn.Module, PrecisionChoice, bool, int, Path | None], Any]
    # (automatic, prompted): their constructors' keyword arguments are the parameters
    generators: tuple[type, type]

    @property
    def parameters(self) -> dict[str, Any]:
        """Every generation parameter the family takes, with its default."""
        return signature_defaults(*self.generators)

    def engine(self, model: nn.Module, precision: PrecisionChoice, compile_model: bool,
               batch_size: int, package_dir: Path | None = None) -> ModelEngine:
        runtime = self.runtime(model, precision, compile_model, batch_size, package_dir)
        return Engine(self.name, runtime, *self.generators)


FAMILIES: dict[str, Family] = {
    "sam1": Family("sam1", "Segment Anything (SAM 1)", _load_sam1,
                   SamRuntime,
                   (MaskEngine, PromptedEngine)),
    "sam2.1": Family("sam2.1", "Segment Anything 2.1 (image predictor)", load_meta_checkpoint,
                     lambda model, precision, compile_model, batch, _packages: Sam2Runtime(
                         model, precision, batch, compile_model),
                     (Sam2MaskEngine, Sam2PromptedEngine)),
}


def family_of(model_type: str) -> Family:
    return FAMILIES[MODEL_REGISTRY[model_type].family]


# Request parameters of every family: the server applies them, not the generator.
SERVER_PARAMETERS = {"min_object_pixels"}


def request_parameters(model_type: str, min_object_pixels: int) -> dict[str, Any]:
    """The request fields (GenerationParams) `model_type`'s family takes, each with the
    default it runs with: GET /info `parameters`, the web page's fields."""
    taken = family_of(model_type).parameters
    return {name: taken.get(name, min_object_pixels) for name in GenerationParams.model_fields
            if name in taken or name in SERVER_PARAMETERS}


def check_parameters(model_type: str, sent: Iterable[str]) -> None:
    """A 422 naming each parameter the client sent that `model_type`'s family does not
    take: a parameter that would do nothing is refused, never ignored."""
    family = family_of(model_type)
    wrong = sorted(set(sent) - set(family.parameters) - SERVER_PARAMETERS)
    if wrong:
        raise InvalidRequest("The request is not valid", {"errors": [
            {"field": name, "message": f"{name} does not apply to {model_type} ({family.title})"}
            for name in wrong]})
