"""A result is found from its job id without listing the storage (a service that ran
for a year holds a million folders): the index entry, then the commit marker. (The
bucket's requests are counted in test_s3_storage.)"""

import os
import statistics
import time

from app.services.results.downloads import result_file
from app.services.results.retention import enforce_retention
from app.services.results.storage.local import LocalStorage
from app.services.results.writer import ResultFolder
from tests.images import scene_rgb
from tests.services.results.test_writer import metadata_of, record

JOB = "3f2c6a1e-1b7a-4c55-9f7e-0d7c1c2a9b10"
NAME = f"20260101T000000Z_{JOB}"


def write(storage) -> None:
    with ResultFolder(storage, NAME) as folder:
        folder.commit(metadata_of(*folder.write_objects(scene_rgb(), [record(0, 0, 40)])))


def download_ms(storage, times: int = 150) -> float:
    """Median milliseconds to find the job's folder and read its overlay."""
    samples = []
    for _ in range(times):
        begun = time.perf_counter()
        size, chunks = result_file(storage, JOB, "overlay.png")
        assert len(b"".join(chunks)) == size
        samples.append((time.perf_counter() - begun) * 1000)
    return statistics.median(samples)


def test_30000_other_folders_do_not_slow_a_download(tmp_path):
    storage = LocalStorage(tmp_path)
    write(storage)
    alone = download_ms(storage)
    for i in range(30_000):  # what a busy service accumulates (listing them takes ~30 ms)
        os.mkdir(tmp_path / f"20250101T000000Z_{i:08d}-0000-4000-8000-000000000000")
    crowded = download_ms(storage)
    # Measured in this run: ~1x when found by id; a glob over the folders is 10-100x.
    assert crowded < 4 * alone, (alone, crowded)



def test_results_from_before_the_index_are_found_after_a_retention_pass(tmp_path):
    storage = LocalStorage(tmp_path)
    write(storage)
    (tmp_path / ".index" / JOB).unlink()  # as an older version left it: no entry
    assert storage.find(JOB) is None
    enforce_retention(storage, ttl_hours=None, max_bytes=None)
    assert storage.find(JOB) == NAME
