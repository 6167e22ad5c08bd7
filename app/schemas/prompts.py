"""Prompts: "cut out the thing I point at". A prompt is points (1 = on the object,
0 = not on it), a box, or both, in the uploaded image's pixels after EXIF
orientation; each prompt yields one object.

`parse_prompts` parses the `prompts` form field and checks it against the image's
size; app.services.intake calls it for POST /segment, POST /jobs and the CLI alike.

`Marks` is what a person marks on an image (the CLI's --point and --box, the web page's
clicks and drags); the `marks` form field sends them as they are and the server
groups them into prompts here, by MARKS_RULE, so no client repeats the rule.
"""

import difflib
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.core.errors import InvalidRequest

FIELD = "prompts"
MARKS_FIELD = "marks"
MARKS_RULE = ("All points describe one object (label 1: on it, 0: not on it); a single box "
              "joins them; several boxes are one object each.")


class Prompt(BaseModel):
    """One object to cut out: SAM's point and box prompts."""

    model_config = ConfigDict(extra="forbid")  # "label" for "labels" must not pass unnoticed

    points: list[tuple[float, float]] = Field(default_factory=list, description="[[x, y], ...] in image pixels")
    labels: list[int] | None = Field(None, description="1 = on the object, 0 = not on it; default all 1")
    box: tuple[float, float, float, float] | None = Field(None, description="[x0, y0, x1, y1] in image pixels")

    @model_validator(mode="after")
    def _consistent(self) -> "Prompt":
        if not self.points and self.box is None:
            raise ValueError("a prompt needs points, a box, or both")
        if self.labels is None:
            self.labels = [1] * len(self.points)
        if len(self.labels) != len(self.points):
            raise ValueError(f"{len(self.labels)} labels for {len(self.points)} points")
        if any(label not in (0, 1) for label in self.labels):
            raise ValueError("labels must be 1 (on the object) or 0 (not on it)")
        if self.box is not None and (self.box[2] <= self.box[0] or self.box[3] <= self.box[1]):
            raise ValueError("box must have x1 > x0 and y1 > y0")
        return self

    def outside(self, width: int, height: int) -> str | None:
        """Why the prompt does not lie inside a `width` x `height` image, or None."""
        for x, y in self.points:
            if not (0 <= x < width and 0 <= y < height):
                return f"point [{x:g}, {y:g}] is outside the {width}x{height} image"
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                return f"box {list(self.box)} is outside the {width}x{height} image"
        return None


class Marks(BaseModel):
    """Points ([x, y] or [x, y, label]) and boxes ([x0, y0, x1, y1]), ungrouped."""

    model_config = ConfigDict(extra="forbid")

    points: list[tuple[float, float] | tuple[float, float, int]] = Field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = Field(default_factory=list)

    def prompts(self) -> list[dict]:
        """The prompts these marks make, by MARKS_RULE (JSON-ready, not yet checked)."""
        grouped: list[dict] = []
        if self.points:
            grouped.append({"points": [list(p[:2]) for p in self.points],
                            "labels": [int(p[2]) if len(p) == 3 else 1 for p in self.points]})
        if len(self.boxes) == 1 and grouped:
            grouped[0]["box"] = list(self.boxes[0])
        else:
            grouped += [{"box": list(box)} for box in self.boxes]
        return grouped


def prompts_from_marks(raw: str) -> str:
    """The `marks` form field (JSON) as the `prompts` field it stands for (JSON);
    raises InvalidRequest (422) naming `marks`."""
    try:
        marks = Marks.model_validate_json(raw)
    except ValidationError as exc:
        reasons = "; ".join(_reason(e, Marks) for e in exc.errors())
        raise _invalid(reasons, field=MARKS_FIELD) from exc
    if not marks.points and not marks.boxes:
        raise _invalid("needs at least one point or box", field=MARKS_FIELD)
    return json.dumps(marks.prompts())


def _invalid(message: str, index: int | None = None, field: str = FIELD) -> InvalidRequest:
    error = {"field": field, "message": message}
    if index is not None:
        error["prompt_index"] = index
    return InvalidRequest("The request is not valid", {"errors": [error]})


def _reason(error: dict, model: type[BaseModel]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":  # a misspelt key: say which keys there are
        keys = list(model.model_fields)
        close = difflib.get_close_matches(where, keys, n=1)
        message = (f"unknown key{f' (did you mean {close[0]!r}?)' if close else ''}; "
                   f"the keys are {', '.join(keys)}")
    return f"{where}: {message}" if where else message


def parse_prompts(raw: str | None, image_size: tuple[int, int], max_objects: int,
                  ) -> list[Prompt] | None:
    """The `prompts` form field (JSON) as prompts checked against the oriented image
    size (width, height), or None when absent; raises InvalidRequest (422) naming
    the field and the offending prompt's index."""
    if raw is None or not raw.strip():
        return None
    try:
        items = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad syntax, absurd integers, deep nesting
        raise _invalid(f"not valid JSON: {exc}") from exc
    if not isinstance(items, list) or not items:
        raise _invalid("must be a non-empty JSON list of prompts")
    if len(items) > max_objects:
        raise _invalid(f"{len(items)} prompts, more than MAX_OBJECTS ({max_objects})")
    prompts = []
    for index, item in enumerate(items):
        try:
            prompt = Prompt.model_validate(item)
        except ValidationError as exc:
            reasons = "; ".join(_reason(e, Prompt) for e in exc.errors())
            raise _invalid(reasons, index) from exc
        if (why := prompt.outside(*image_size)) is not None:
            raise _invalid(why, index)
        prompts.append(prompt)
    return prompts
