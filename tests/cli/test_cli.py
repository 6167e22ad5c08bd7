"""`python -m app segment`: the pipeline on files and folders, without a server."""

import json
import os
import subprocess
import sys

from app.__main__ import main
from tests.conftest import PERMISSIVE, REPO
from tests.images import image_bytes

PERMISSIVE_OPTIONS = [part for name, value in PERMISSIVE.items()
                      for part in ("--" + name.replace("_", "-"), value)]


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def manifest_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_batch_names_inputs_relative_to_their_argument_resumes_and_forces(tmp_path, tiny_checkpoint,
                                                                         monkeypatch):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.png").write_bytes(image_bytes())
    (images / "sub" / "a.png").write_bytes(image_bytes())  # the same file name, in a subfolder
    (images / "notes.txt").write_text("not an image, and not picked from a folder")
    broken = images / "broken.png"
    broken.write_bytes(b"%PDF-1.4 not an image")
    (tmp_path / "more" / "deep").mkdir(parents=True)
    (tmp_path / "more" / "deep" / "c d.jpg").write_bytes(image_bytes("JPEG"))
    out = tmp_path / "out"
    options = ("--out", str(out), "--model", "sam_tiny", "--checkpoint", str(tiny_checkpoint),
               *PERMISSIVE_OPTIONS)
    command = ("segment", "images", "more/**/*.jpg", "images/sub/a.png", *options)  # a.png twice: done once

    first = run_cli(*command, cwd=tmp_path)  # the glob quoted: the program expands it

    assert first.returncode == 1, first.stdout + first.stderr
    assert "3 of 4 images done: 3 segmented now" in first.stdout and "INVALID_IMAGE" in first.stdout
    lines = {line["input"]: line for line in manifest_lines((out / "manifest.jsonl").read_text())}
    assert set(lines) == {"a.png", "sub/a.png", "broken.png", "deep/c d.jpg"}
    assert lines["broken.png"]["status"] == "failed" and lines["broken.png"]["error_code"] == "INVALID_IMAGE"
    for name in ("a.png", "sub/a.png", "deep/c d.jpg"):
        line = lines[name]
        assert line["status"] == "succeeded" and line["objects_count"] >= 1 and line["seconds"] > 0
        folder = out / line["output_dir"].rpartition("/")[2]
        assert folder.name.startswith(name.rpartition("/")[2].rsplit(".", 1)[0].replace(" ", "-") + "_2")
        assert folder.name.endswith(line["job_id"])
        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["parameters"]["points_per_side"] == 8 and metadata["model_type"] == "sam_tiny"
    folders = {p.name for p in out.glob("[!.]*") if p.is_dir()}
    assert len(folders) == 3

    broken.write_bytes(image_bytes())  # fixed: the re-run retries it and skips the rest
    monkeypatch.chdir(tmp_path)  # the re-runs in this process: no second interpreter start-up
    assert main(list(command)) == 0
    rerun = manifest_lines((out / "manifest.jsonl").read_text())[4:]
    assert sorted((line["input"], line["status"]) for line in rerun) == [
        ("a.png", "skipped"), ("broken.png", "succeeded"), ("deep/c d.jpg", "skipped"),
        ("sub/a.png", "skipped")]
    assert all(line["job_id"] == lines[line["input"]]["job_id"] for line in rerun
               if line["status"] == "skipped")
    assert len({p.name for p in out.glob("[!.]*") if p.is_dir()} - folders) == 1  # broken's only

    assert main(["segment", "images/a.png", *options, "--force"]) == 0
    [redone] = manifest_lines((out / "manifest.jsonl").read_text())[8:]
    assert redone["input"] == "a.png" and redone["status"] == "succeeded"
    assert redone["job_id"] != lines["a.png"]["job_id"]


def test_batch_reads_a_bucket_prefix_and_writes_results_and_manifest_to_a_bucket(
        tmp_path, tiny_checkpoint, s3):
    client = s3.client()
    for key in ("photos/[red]scene[x].png", "photos/sub/[red]scene[x].png"):  # brackets: never markup
        client.put_object(Bucket=s3.BUCKET, Key=key, Body=image_bytes())
    client.put_object(Bucket=s3.BUCKET, Key="photos/readme.txt", Body=b"not an image")

    result = run_cli("segment", f"s3://{s3.BUCKET}/photos", "--out", f"s3://{s3.BUCKET}/cli",
                     "--model", "sam_tiny", "--checkpoint", str(tiny_checkpoint),
                     *PERMISSIVE_OPTIONS, "--coco-segmentation", "polygons", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 images done: 2 segmented now" in result.stdout
    assert not (tmp_path / "s3:").exists()  # --out takes RESULTS_DIR's forms, never a folder "s3:"
    body = client.get_object(Bucket=s3.BUCKET, Key="cli/manifest.jsonl")["Body"].read().decode()
    lines = {line["input"]: line for line in manifest_lines(body)}
    assert set(lines) == {"[red]scene[x].png", "sub/[red]scene[x].png"}
    for line in lines.values():
        assert line["status"] == "succeeded"
        folder = line["output_dir"].removeprefix(f"s3://{s3.BUCKET}/")
        assert folder.startswith("cli/red-scene-x_") and folder.endswith(line["job_id"])
        annotations = json.loads(client.get_object(Bucket=s3.BUCKET, Key=f"{folder}/annotations.json")
                                 ["Body"].read())["annotations"]
        assert annotations and all(isinstance(a["segmentation"], list) for a in annotations)


def test_inputs_that_are_not_there_are_usage_errors(tmp_path, s3, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # in this process: a usage error loads no model
    (tmp_path / "empty").mkdir()
    for argument, says in (("missing.png", "No such file or folder"), ("empty", "No images found"),
                           ("nowhere/**/*.jpg", "No images found"),
                           ("s3://no-such-bucket/photos/", "does not exist"),
                           (f"s3://{s3.BUCKET}/nothing/", "No images found")):
        status = main(["segment", argument])
        printed = capsys.readouterr().out
        assert status == 2 and says in " ".join(printed.split()), (argument, printed)
    assert not (tmp_path / "results").exists()


def test_an_output_bucket_that_does_not_exist_is_named(tmp_path, s3, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(image_bytes())
    out = "s3://no-such-bucket/out/"
    assert main(["segment", "a.png", "--model", "sam_tiny", "--out", out]) == 1
    printed = " ".join(capsys.readouterr().out.split())
    assert "STORAGE_ERROR: Cannot write results to s3://no-such-bucket/out" in printed, printed


def test_out_of_range_parameter_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["segment", str(tmp_path), "--points-per-side", "0"]) == 2
    assert "points_per_side" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()
