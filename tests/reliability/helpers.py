"""Helpers for the reliability tests: uploads, envelope checks, leftovers, figures."""

import json
import os
from pathlib import Path

import requests

from tests.conftest import PERMISSIVE

FIGURES = Path(os.environ.get("RELIABILITY_FIGURES", "/tmp/reliability-figures.json"))


def record_figure(name: str, value) -> None:
    """Keep a measured figure (for docs/reliability.md); also printed with -s."""
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = value
    FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True))
    print(f"FIGURE {name} = {value}")


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
    """Temporary or incomplete folders in the results folder."""
    if not results_dir.is_dir():
        return []
    return [p.name for p in results_dir.iterdir()
            if p.name.startswith(".tmp-") or (p.is_dir() and not (p / "metadata.json").is_file())]


