"""Write one job's result folder so that it is all there or absent.

The files go through the storage's `FolderWriter` (see app.services.results.storage):
`commit` writes the annotations, then metadata.json last, and makes the folder
visible. A folder left without a commit (any error, a cancelled job) is removed with
everything in it, so a reader never sees a half-written result.

Given the job's StopSignal, every storage call runs off the job's thread and the job
stops (JobAbandoned) as soon as the signal is set, even inside a call to a store that
hangs: writing never outlives the job's deadline. The abandoned call ends by itself
(bounded storage timeouts), and the folder is removed after it, in the background.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as CallPending
from typing import TypeVar

import numpy as np

from app.schemas import JobMetadata, SavedObject, SkippedMask
from app.services.deadline import StopSignal
from app.services.engine.records import MaskRecord
from app.services.image_processor import encode_mask, encode_png
from app.services.results import layout
from app.services.results.cutout import cut_out
from app.services.results.exports import coco_json, coco_rle, mask_to_polygons
from app.services.results.overlay import render_overlay
from app.services.results.storage import Storage

# PNG encoding releases the GIL, so a few threads encode in parallel: as many as a
# memory budget holds, each object's full-size temporaries (its mask, the mask's PNG
# rows, the cut-out) costing about 12 bytes a pixel. 4 threads at 1 MP, one at 24 MP.
_WRITE_THREADS = 4
_WRITE_BUDGET = 512 * 2**20
_BYTES_PER_PIXEL = 12
# How often a storage call in progress looks at the stop signal, and how long an
# abort may hold the job once stopped (a local folder is removed well within it).
_STOP_POLL_S = 0.1
_ABORT_WAIT_S = 1.0
T = TypeVar("T")


class ResultFolder:
    """`with ResultFolder(storage, name) as folder:` write objects, then `commit(metadata)`."""

    def __init__(self, storage: Storage, name: str, stop: StopSignal | None = None) -> None:
        self.storage, self.name = storage, name
        self.location = storage.folder_location(name)
        self.stop = stop or StopSignal()
        self._committed = False
        # One thread: calls keep their order, and an abort runs after an abandoned put.
        self._calls = ThreadPoolExecutor(1, thread_name_prefix="result-folder")

    def __enter__(self) -> "ResultFolder":
        try:
            self._writer = self._bounded(self.storage.begin, self.name)
        except BaseException:
            self._calls.shutdown(wait=False)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        # A run whose job was requeued leaves the folder (the same name) to the newer run.
        if not self._committed and not (self.stop.is_set() and self.stop.reason == "requeued"):
            aborted = self._calls.submit(self._writer.abort)
            try:
                aborted.result(timeout=_ABORT_WAIT_S if self.stop.is_set() else None)
            except CallPending:
                pass  # a hanging store: the abort finishes (or logs) in the background
        self._calls.shutdown(wait=False)

    def _bounded(self, call: Callable[..., T], *args) -> T:
        """`call(*args)` on the storage thread; JobAbandoned once the job is stopped."""
        self.stop.check()
        pending = self._calls.submit(call, *args)
        while True:
            try:
                return pending.result(timeout=_STOP_POLL_S)
            except CallPending:
                self.stop.check()

    def write_objects(self, image: np.ndarray, records: list[MaskRecord],
                      ) -> tuple[list[SavedObject], list[SkippedMask]]:
        """The overlay, then one mask and one cut-out per record (indexed in order).
        A record whose PNG comes out empty is listed as skipped instead."""
        pixels = image.shape[0] * image.shape[1]
        threads = max(1, min(_WRITE_THREADS, _WRITE_BUDGET // (pixels * _BYTES_PER_PIXEL)))
        pool = ThreadPoolExecutor(threads)
        try:
            overlay = pool.submit(lambda: encode_png(render_overlay(image, (r.mask() for r in records))))
            encoded = [pool.submit(_encode_object, image, i, r) for i, r in enumerate(records)]
            self._put(layout.OVERLAY, overlay.result())
            objects, skipped = [], []
            for future in encoded:
                entry, mask_png, object_png = future.result()
                if not (mask_png and object_png):
                    skipped.append(SkippedMask(index=entry.index, area=entry.area,
                                               reason="file_missing_or_empty"))
                    continue
                self._put(entry.mask_file, mask_png)
                self._put(entry.object_file, object_png)
                objects.append(entry)
        finally:  # a stopped job does not wait for the encodings not yet started
            pool.shutdown(cancel_futures=True)
        return objects, skipped

    def commit(self, metadata: JobMetadata) -> str:
        """Write annotations.json, then metadata.json, and make the folder visible."""
        self._put(layout.ANNOTATIONS, coco_json(metadata))
        self._put(layout.METADATA, metadata.model_dump_json(indent=2).encode())
        self._bounded(self._writer.commit)
        self._committed = True
        return self.location

    def _put(self, name: str, data: bytes) -> None:
        self._bounded(self._writer.put, name, data)


def _encode_object(image: np.ndarray, index: int, record: MaskRecord,
                   ) -> tuple[SavedObject, bytes, bytes]:
    mask = record.mask()  # one object's pixels at a time: memory stays bounded
    bbox = record.bbox
    cutout = cut_out(image, mask, bbox)
    entry = SavedObject(
        index=index, bbox=bbox, area=record.area,
        predicted_iou=round(record.predicted_iou, 6),
        stability_score=round(record.stability_score, 6),
        point_coords=record.point_coords, crop_box=record.crop_box,
        rle=coco_rle(record.rle), polygons=mask_to_polygons(mask),
        mask_file=layout.mask_file(index), object_file=layout.object_file(index))
    return entry, encode_mask(mask), encode_png(cutout)
