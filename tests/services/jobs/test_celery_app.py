"""The Celery app of `celery -A app.services.jobs.celery_app ...`: made from the settings,
without torch (the command line of an operator's laptop loads no model)."""

import os
import subprocess
import sys

from tests.conftest import REPO

_PROBE = """
import sys
from app.services.jobs.celery_app import celery
print(celery.conf.broker_url, "torch" in sys.modules)
"""


def test_the_command_line_app_reads_broker_url_and_never_imports_torch(tmp_path):
    answer = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO),
                                 "BROKER_URL": "redis://127.0.0.1:6399/3"})
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["redis://127.0.0.1:6399/3", "False"]
