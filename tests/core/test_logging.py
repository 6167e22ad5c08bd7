"""What a person sees when the server cannot start: a real uvicorn in a subprocess, on a
terminal (a pseudo-terminal) and not (a pipe), failing as it does without its weights."""

import json
import logging
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog

from app.core.logging import setup_logger
from tests.conftest import REPO, free_port

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# The three starts below, run at once (each spends seconds importing torch).
STARTS = {"terminal": (True, {}), "pipe": (False, {}),
          "terminal_json_debug": (True, {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"})}


@pytest.fixture(scope="module")
def failed_starts(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """Each start's exit status and output."""
    with ThreadPoolExecutor(len(STARTS)) as pool:
        futures = {name: pool.submit(start_without_weights, tmp_path_factory.mktemp(name), terminal, **env)
                   for name, (terminal, env) in STARTS.items()}
        return {name: future.result() for name, future in futures.items()}


def start_without_weights(tmp_path, terminal: bool, **env: str) -> tuple[int, str]:
    """Run the server with OFFLINE=1 and no checkpoint; its exit status and output."""
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(free_port())]
    inherited = {k: v for k, v in os.environ.items()
                 if k not in ("LOG_FORMAT", "LOG_LEVEL", "SAM_CHECKPOINT_PATH", "SAM_CHECKPOINT_URL")}
    full_env = {**inherited, "PYTHONPATH": str(REPO), "OFFLINE": "1", "DEFAULT_MODEL": "vit_b",
                "MODEL_CACHE_DIR": str(tmp_path / "models"), "RESULTS_DIR": str(tmp_path / "results"),
                **env}
    if not terminal:
        done = subprocess.run(command, env=full_env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        return done.returncode, done.stdout + done.stderr
    main, child = os.openpty()
    process = subprocess.Popen(command, env=full_env, cwd=tmp_path, stdin=child, stdout=child,
                               stderr=child)
    os.close(child)
    output = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the server exited and its terminal closed
            break
        if not data:
            break
        output += data
    os.close(main)
    return process.wait(timeout=60), ANSI.sub("", output.decode()).replace("\r\n", "\n")


def test_a_failed_start_on_a_terminal_ends_with_the_error_and_what_to_do(failed_starts):
    status, output = failed_starts["terminal"]
    assert status != 0
    assert "Traceback" not in output and not re.search(r"^\{", output, re.MULTILINE)
    lines = output.rstrip().splitlines()
    what_to_do = lines.index("  What to do:")
    assert "startup_failed" in lines[what_to_do - 2] and "error_code=MODEL_LOAD_FAILED" in lines[what_to_do - 2]
    assert lines[what_to_do - 1].startswith("  OFFLINE=1 and no checkpoint for vit_b")
    remedies = lines[what_to_do + 1:]
    assert len(remedies) >= 2 and all(line.startswith("    - ") for line in remedies)
    assert any("DEFAULT_MODEL=sam_tiny" in line for line in remedies)


def test_a_failed_start_without_a_terminal_is_json_lines_without_a_traceback(failed_starts):
    status, output = failed_starts["pipe"]
    assert status != 0
    records = [json.loads(line) for line in output.splitlines()]
    failed = records[-1]
    assert failed["event"] == "startup_failed" and failed["error_code"] == "MODEL_LOAD_FAILED"
    assert failed["message"].startswith("OFFLINE=1") and len(failed["remedies"]) >= 2
    assert "Traceback" not in output


def test_log_format_and_debug_level_override_the_terminal_and_show_the_traceback(failed_starts):
    status, output = failed_starts["terminal_json_debug"]
    assert status != 0
    records = [json.loads(line) for line in output.splitlines() if line]
    assert any(r["event"] == "startup_failed" for r in records)
    assert any(r["event"].startswith("Traceback") and "ModelLoadFailed" in r["event"] for r in records)


@pytest.fixture
def logging_restored():
    """setup_logger reconfigures process-wide logging: put it back for the other tests."""
    import torch  # noqa: F401 - its import gives torch's loggers a plain-text handler

    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access",
             *(n for n in logging.root.manager.loggerDict if n.split(".")[0] == "torch")]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate,
                 logging.getLogger(n).level) for n in names}
    config = structlog.get_config()
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)
    structlog.configure(**config)


def test_a_warning_of_torch_itself_is_a_json_line_too(logging_restored, capsys):
    setup_logger("INFO", "json")
    # What torch.compile prints on a machine without CUDA, via torch's own logger.
    logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found")

    record = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert record["event"] == "No CUDA runtime is found" and record["level"] == "warning"
    assert record["logger"] == "torch.utils.cpp_extension"
