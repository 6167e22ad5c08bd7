"""What a prompted job keeps: one object per prompt, in prompt order (the order the
user asked for them), each saved object carrying its prompt and prompt index."""

from app.schemas import AppliedParameters, SavedObject, SkippedMask
from app.schemas.prompts import Prompt
from app.services.engine.records import MaskRecord


def select_prompted(records: list[MaskRecord], params: AppliedParameters,
                    ) -> tuple[list[MaskRecord], list[SkippedMask]]:
    """The records to save, in prompt order, and the ones left out with the reason:
    an empty mask, or one smaller than `min_object_pixels`. (MAX_OBJECTS bounds the
    number of prompts a request may send.)"""
    kept, skipped = [], []
    for index, record in enumerate(records):
        if record.area == 0:
            skipped.append(SkippedMask(area=0, reason="empty_mask", prompt_index=index))
        elif record.area < params.min_object_pixels:
            skipped.append(SkippedMask(area=record.area, reason="smaller_than_min_object_pixels",
                                       prompt_index=index))
        else:
            kept.append(record)
    return kept, skipped


def attach_prompts(objects: list[SavedObject], kept: list[MaskRecord],
                   records: list[MaskRecord], prompts: list[Prompt]) -> list[SavedObject]:
    """The saved objects with the prompt that asked for each (matched by record)."""
    prompt_index = {id(record): i for i, record in enumerate(records)}
    by_position = [prompt_index[id(record)] for record in kept]
    return [obj.model_copy(update={"prompt": prompts[by_position[obj.index]],
                                   "prompt_index": by_position[obj.index]})
            for obj in objects]
