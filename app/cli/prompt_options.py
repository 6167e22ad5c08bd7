"""The CLI's prompt options: --point, --box and --prompts FILE.json.

--point and --box are marks, grouped into prompts (one prompt = one cut-out) by the
server's rule (app.schemas.prompts.MARKS_RULE), as the web page's clicks are:
- all --point options describe ONE object: `--point 120,80` cuts out the thing
  clicked, `--point 120,80 --point 10,10,0` the same thing but not what is at (10, 10);
- a single --box joins those points (the object at the points, inside the box);
  several --box options are one object each (the points, if any, one more);
- --prompts FILE.json maps image file names to lists of prompts in the JSON form of
  POST /segment's `prompts` field, for many images at once; an image it does not list
  is reported as failed rather than segmented whole.
Every prompt is validated as the server validates it, per image.
"""

import argparse
import json
from pathlib import Path

from app.schemas.prompts import Marks


def add_prompt_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prompted cut-outs (default: segment everything)")
    group.add_argument("--point", action="append", type=_numbers(2, 3), metavar="X,Y[,LABEL]",
                       help="a point on the object (LABEL 1, the default) or not on it (0); repeatable")
    group.add_argument("--box", action="append", type=_numbers(4, 4), metavar="X0,Y0,X1,Y1",
                       help="a box around an object; repeatable")
    group.add_argument("--prompts", type=Path, metavar="FILE.json",
                       help='{"photo.jpg": [{"points": [[x, y]], "labels": [1]}, ...], ...}')


def _numbers(least: int, most: int):
    def parse(text: str) -> list[float]:
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        if not least <= len(values) <= most:
            raise argparse.ArgumentTypeError(f"expected {least} to {most} comma-separated numbers: {text!r}")
        return values
    return parse


class PromptSource:
    """The `prompts` field (JSON text, or None for automatic generation) of each image."""

    def __init__(self, args: argparse.Namespace) -> None:
        if args.prompts and (args.point or args.box):
            raise ValueError("use --prompts FILE or --point/--box, not both")
        self.by_name: dict[str, list] | None = None
        self.common = _from_options(args.point or [], args.box or [])
        if args.prompts:
            try:
                self.by_name = json.loads(args.prompts.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot read {args.prompts}: {exc}") from exc
            if not isinstance(self.by_name, dict):
                raise ValueError(f"{args.prompts} must map image file names to lists of prompts")

    def for_image(self, image: Path) -> str | None:
        """The JSON prompts for `image`; KeyError when --prompts does not list it."""
        if self.by_name is None:
            return self.common
        for key in (str(image), image.name):
            if key in self.by_name:
                return json.dumps(self.by_name[key])
        raise KeyError(image.name)


def _from_options(points: list[list[float]], boxes: list[list[float]]) -> str | None:
    if not points and not boxes:
        return None
    return json.dumps(Marks(points=[tuple(p) for p in points], boxes=[tuple(b) for b in boxes]).prompts())
