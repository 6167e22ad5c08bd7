"""JOB_TIMEOUT_S covers the whole job: a job stopped after generation stops in its
post-processing, and one whose store hangs while it writes stops at once, not after
the store's timeouts. The real pipeline on sam_tiny, a store that never answers."""

import threading
import time
import traceback

import pytest

from app.core.config import Settings, get_settings
from app.core.errors import JobAbandoned
from app.schemas import JobRequest
from app.services.model.manager import ModelManager
from app.services.pipeline import StopSignal, run_job
from app.services.results.layout import TMP_PREFIX
from app.services.results.storage import _storage
from app.services.results.storage.local import LocalStorage
from app.services.results.writer import ResultFolder
from tests.conftest import PERMISSIVE_PARAMS
from tests.hanging_store import hanging_store  # noqa: F401 - the fixture
from tests.images import image_bytes, scene_rgb
from tests.services.results.test_writer import record

NAME = "20260101T000000Z_3f2c6a1e-1b7a-4c55-9f7e-0d7c1c2a9b10"


@pytest.fixture
def bucket_that_hangs(hanging_store, monkeypatch):  # noqa: F811 - the fixture
    # Long storage timeouts: only the job's deadline can end a write to this store.
    for name, value in {**hanging_store.env, "STORAGE_READ_TIMEOUT_S": "60",
                        "STORAGE_CONNECT_TIMEOUT_S": "60"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear(), _storage.cache_clear()
    yield
    # The abandoned storage calls end once the store closes, before the environment
    # that points them at it goes.
    hanging_store.stop()
    for thread in threading.enumerate():
        if thread.name.startswith("result-folder"):
            thread.join(10)
    get_settings.cache_clear(), _storage.cache_clear()


def test_a_deadline_stops_post_processing_and_a_write_to_a_hanging_store(
        tmp_path, tiny_checkpoint, bucket_that_hangs):
    settings = Settings(DEFAULT_MODEL="sam_tiny", SAM_CHECKPOINT_PATH=tiny_checkpoint,
                        RESULTS_DIR="s3://sam-results/team")
    manager = ModelManager(settings)
    # The deadline passes right after the last batch was decoded and checked.
    stop = _PassesAfterGeneration()
    with pytest.raises(JobAbandoned) as stopped:
        run_job(JobRequest(image=image_bytes(), params=PERMISSIVE_PARAMS), manager, settings,
                stop.progress, stop)
    assert stopped.value.reason == "timeout"
    frames = [frame.name for frame in traceback.extract_tb(stopped.tb)]
    assert frames[frames.index("checkpoint") - 1] == "_records"  # stopped in post-processing
    # The deadline passes while the result is written to a store that never answers.
    stop, began = StopSignal(), {}

    def deadline_in_writing(phase: str, share: float | None) -> None:
        if phase == "objects_saved":
            began["at"] = time.monotonic()
            threading.Timer(0.5, stop.stop, args=("timeout",)).start()

    with pytest.raises(JobAbandoned):
        run_job(JobRequest(image=image_bytes(), params=PERMISSIVE_PARAMS), manager, settings,
                deadline_in_writing, stop)
    assert time.monotonic() - began["at"] < 0.5 + 1.5  # the job ends with its deadline


class _PassesAfterGeneration(StopSignal):
    """A deadline that passes just after the last batch's own check (so a job with no
    checkpoint in post-processing would only stop after it, before writing)."""

    checks_left: int | None = None

    def progress(self, phase: str, share: float | None) -> None:
        if share == 1:
            self.checks_left = 1

    def check(self) -> None:
        if self.checks_left == 0:
            self.stop("timeout")
        elif self.checks_left is not None:
            self.checks_left -= 1
        super().check()


@pytest.mark.parametrize("reason, left", [("timeout", False), ("requeued", True)])
def test_a_stopped_write_removes_its_folder_unless_a_newer_run_owns_it(tmp_path, reason, left):
    storage, stop = LocalStorage(tmp_path), StopSignal()
    with pytest.raises(JobAbandoned), ResultFolder(storage, NAME, stop) as folder:
        stop.stop(reason)  # requeued: another worker runs the job and writes this folder
        folder.write_objects(scene_rgb(), [record(0, 0, 40)])
    assert (tmp_path / f"{TMP_PREFIX}{NAME}").exists() is left
