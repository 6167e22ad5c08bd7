"""`python -m app segment --broker URL`: a batch submitted to a real worker over a real
redis-server, followed to the end, with the same manifest as an embedded batch."""

import json
import os
import subprocess
import sys

import redis

from tests.cli.test_cli import PERMISSIVE_OPTIONS, manifest_lines
from tests.conftest import REPO
from tests.images import image_bytes


def test_cli_batch_with_a_broker_runs_every_image_on_the_workers(tmp_path, cluster):
    worker = cluster.worker()
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.png").write_bytes(image_bytes())
    (images / "sub" / "a.png").write_bytes(image_bytes("JPEG"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "DEFAULT_MODEL": "sam_tiny",
           "RESULTS_DIR": str(cluster.results_dir)}
    env.pop("BROKER_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "app", "segment", "images", "--out", "manifests",
         "--broker", cluster.redis.url, "--max-in-flight", "1", *PERMISSIVE_OPTIONS],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line["input"]: line for line in
             manifest_lines((tmp_path / "manifests" / "manifest.jsonl").read_text())}
    assert set(lines) == {"a.png", "sub/a.png"}
    for line in lines.values():
        assert line["status"] == "succeeded" and line["objects_count"] >= 1
        folder = cluster.results_dir / line["output_dir"].rpartition("/")[2]
        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["worker"].endswith(f":{worker.pid}")  # the worker ran it, not the CLI
    # --max-in-flight 1: the second job was submitted only once the first had finished
    records = sorted((json.loads(redis.Redis.from_url(cluster.redis.url).get(f"sam:job:{line['job_id']}"))
                      for line in lines.values()), key=lambda record: record["created_at"])
    assert records[1]["created_at"] >= records[0]["finished_at"]
