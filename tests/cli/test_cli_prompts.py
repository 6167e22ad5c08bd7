"""`python -m app segment --point/--box/--prompts` with the shipped sam_tiny."""

import json

import numpy as np
from PIL import Image

from app.__main__ import main
from app.cli.prompt_options import _from_options
from sam_tiny.scenes import generate_scene
from tests.cli.test_cli import run_cli
from tests.images import encode
from tests.services.engine.test_prompted import HELD_OUT_SEED, interior_point, iou


def test_point_and_box_options_are_marks_grouped_by_the_servers_rule():
    assert json.loads(_from_options([[1, 2], [3, 4, 0]], [[0, 0, 5, 5]])) == [
        {"points": [[1, 2], [3, 4]], "labels": [1, 0], "box": [0, 0, 5, 5]}]
    assert _from_options([], []) is None


def test_point_option_cuts_out_the_object_clicked(tmp_path):
    image, masks = generate_scene(np.random.default_rng(HELD_OUT_SEED + 20))
    (tmp_path / "scene.png").write_bytes(encode(image))
    target = max(masks, key=np.sum)  # the largest object: what a shop user clicks
    x, y = interior_point(target)
    result = run_cli("segment", "scene.png", "--out", "out", "--model", "sam_tiny",
                     "--point", f"{x:g},{y:g}", "--min-object-pixels", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = (p for p in (tmp_path / "out").glob("[!.]*") if p.is_dir())
    metadata = json.loads((folder / "metadata.json").read_text())
    assert [o["prompt_index"] for o in metadata["objects"]] == [0]
    assert iou(np.asarray(Image.open(folder / metadata["objects"][0]["mask_file"])) > 0, target) >= 0.5


def test_prompts_file_maps_images_to_prompts_and_bad_prompts_fail_that_image(tmp_path):
    image, masks = generate_scene(np.random.default_rng(HELD_OUT_SEED + 21))
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(encode(image))
    point = list(interior_point(masks[0]))
    (tmp_path / "prompts.json").write_text(json.dumps({
        "a.png": [{"points": [point]}, {"box": [0, 0, 100, 100]}],
        "b.png": [{"points": [[9999, 1]]}]}))
    result = run_cli("segment", "a.png", "b.png", "c.png", "--out", "out", "--model", "sam_tiny",
                     "--prompts", "prompts.json", "--min-object-pixels", "0", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 of 3 images done: 1 segmented now" in result.stdout
    assert "prompt 0: point [9999, 1] is outside" in result.stdout
    assert "not listed in the --prompts file" in result.stdout
    (folder,) = (p for p in (tmp_path / "out").glob("[!.]*") if p.is_dir())
    metadata = json.loads((folder / "metadata.json").read_text())
    assert [o["prompt_index"] for o in metadata["objects"]] == [0, 1]


def test_prompts_file_with_point_option_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # in this process: a usage error loads no model
    (tmp_path / "p.json").write_text("{}")
    assert main(["segment", "x.png", "--prompts", "p.json", "--point", "1,2"]) == 2
    assert "not both" in capsys.readouterr().out
