"""`python -m app segment`: the pipeline on files and folders, without a server."""

import json
import os
import subprocess
import sys

from tests.conftest import PERMISSIVE, REPO
from tests.images import image_bytes

PERMISSIVE_OPTIONS = [part for name, value in PERMISSIVE.items()
                      for part in ("--" + name.replace("_", "-"), value)]


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def test_segment_writes_a_result_folder_per_image_and_fails_when_one_image_fails(tmp_path, tiny_checkpoint):
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    (images / "one.png").write_bytes(image_bytes())
    (images / "nested" / "two.jpg").write_bytes(image_bytes("JPEG"))
    (images / "notes.txt").write_text("not an image, and not picked from a folder")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"%PDF-1.4 not an image")
    out = tmp_path / "out"

    result = run_cli("segment", str(images), str(broken), "--out", str(out), "--model", "sam_tiny",
                     "--checkpoint", str(tiny_checkpoint), *PERMISSIVE_OPTIONS, cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert "2 of 3 images segmented" in result.stdout
    assert "INVALID_IMAGE (not_an_image)" in result.stdout
    folders = sorted(out.glob("[!.]*"))
    assert len(folders) == 2
    names = set()
    for folder in folders:
        metadata = json.loads((folder / "metadata.json").read_text())
        names.add(metadata["image"]["file_name"])
        assert metadata["parameters"]["points_per_side"] == 8 and metadata["model_type"] == "sam_tiny"
        assert (folder / "annotations.json").is_file() and (folder / "overlay.png").is_file()
    assert names == {"one.png", "two.jpg"}


def test_segment_exits_zero_when_every_image_succeeds_and_writes_to_a_bucket(
        tmp_path, tiny_checkpoint, s3):
    image = tmp_path / "[red]scene[x].png"  # brackets are a file name's, never markup
    image.write_bytes(image_bytes())
    result = run_cli("segment", str(image), "--out", f"s3://{s3.BUCKET}/cli", "--model", "sam_tiny",
                     "--checkpoint", str(tiny_checkpoint), *PERMISSIVE_OPTIONS,
                     "--coco-segmentation", "polygons", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 images segmented" in result.stdout and "[red]scene[x].png" in result.stdout
    assert not (tmp_path / "s3:").exists()  # --out takes RESULTS_DIR's forms, never a folder "s3:"
    folders = {k.split("/")[1] for k in s3.keys() if not k.startswith("cli/.index/")}
    assert len(folders) == 1
    folder = folders.pop()
    assert f"s3://{s3.BUCKET}/cli/{folder}" in result.stdout
    body = s3.client().get_object(Bucket=s3.BUCKET, Key=f"cli/{folder}/annotations.json")["Body"]
    annotations = json.loads(body.read())["annotations"]
    assert annotations and all(isinstance(a["segmentation"], list) for a in annotations)


def test_out_of_range_parameter_is_a_usage_error(tmp_path):
    result = run_cli("segment", str(tmp_path), "--points-per-side", "0", cwd=tmp_path)
    assert result.returncode == 2 and "points_per_side" in result.stdout
    assert not (tmp_path / "results").exists()
