"""Fixtures for the reliability tests."""

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def tmpfs(tmp_path):
    """mount_tmpfs(options) -> a fresh tmpfs folder (needs root); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
