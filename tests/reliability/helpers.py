"""Helpers for the reliability tests: uploads, envelope checks, leftovers, figures."""

import json
import os
from pathlib import Path

import requests

from tests.conftest import PERMISSIVE

def record_figure(name: str, value) -> None:
    """Print a measured figure (for docs/reliability.md; read it with -s), and keep it in
    the JSON file named by RELIABILITY_FIGURES when that is set."""
    print(f"FIGURE {name} = {value}")
    if "RELIABILITY_FIGURES" not in os.environ:
        return
    figures_file = Path(os.environ["RELIABILITY_FIGURES"])
    figures = json.loads(figures_file.read_text()) if figures_file.exists() else {}
    figures[name] = value
    figures_file.write_text(json.dumps(figures, indent=2, sort_keys=True))


def post_image(url: str, data: bytes, timeout: float = 120, headers: dict | None = None,
               **fields: str) -> requests.Response:
    return requests.post(url + "/segment", files={"image": ("upload.png", data)},
                         data={**PERMISSIVE, **fields}, timeout=timeout, headers=headers)


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error_code"] == code, body
    assert set(body) == {"success", "error_code", "message", "details"}
    return body


def leftovers(results_dir: Path) -> list[str]:
    """Temporary or incomplete folders in the results folder (`.jobs` holds job records,
    `.staging` queued images), and index entries (`.index/<job_id>`) naming no finished
    folder."""
    if not results_dir.is_dir():
        return []
    kept = (".jobs", ".index", ".staging")
    found = [p.name for p in results_dir.iterdir() if p.name not in kept and (
        p.name.startswith(".tmp-") or (p.is_dir() and not (p / "metadata.json").is_file()))]
    index = results_dir / ".index"
    entries = sorted(index.iterdir()) if index.is_dir() else []
    return found + [f".index/{e.name}" for e in entries
                    if not (results_dir / e.read_text() / "metadata.json").is_file()]


def results(results_dir: Path) -> list[str]:
    """The result folders (and anything else but the index and the job records) there."""
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if p.name not in (".jobs", ".index"))
