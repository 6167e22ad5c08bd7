"""SAM 2.1's implementation of the engine interface (`interface.ModelEngine`)."""

from typing import Any

from app.services.engine.interface import EngineCalls, prompt_kwargs, signature_defaults
from app.services.engine.sam2.generator import Sam2MaskEngine
from app.services.engine.sam2.prompted import Sam2PromptedEngine
from app.services.engine.sam2.runtime import Sam2Runtime


class Sam2Engine(EngineCalls):
    """SAM 2.1 (transformers' Sam2Model): Sam2MaskEngine and Sam2PromptedEngine."""

    family = "sam2.1"

    def __init__(self, runtime: Sam2Runtime) -> None:
        self.runtime = runtime

    @property
    def compiled(self) -> bool:
        return self.runtime.compiled

    @property
    def parameters(self) -> dict[str, Any]:
        return signature_defaults(Sam2MaskEngine, Sam2PromptedEngine)

    def automatic(self, **params: Any) -> Sam2MaskEngine:
        return Sam2MaskEngine(self.runtime, **params)

    def prompted(self, **params: Any) -> Sam2PromptedEngine:
        return Sam2PromptedEngine(self.runtime, **prompt_kwargs(params, Sam2PromptedEngine))

    def warm_up(self) -> float:
        return self.runtime.warm_up()
