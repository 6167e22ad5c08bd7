"""Write one job's result folder so that it is all there or absent.

Everything goes into a hidden `.tmp-<name>` folder first; `commit` writes the
annotations, then metadata.json last, and renames the folder to its final name. A
folder left without a commit (any error, a cancelled job) is removed with
everything in it, so a reader never sees a half-written result.
"""

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from app.core.errors import StorageError
from app.schemas import JobMetadata, SavedObject, SkippedMask
from app.services.engine.records import MaskRecord
from app.services.image_processor import encode_mask, encode_png
from app.services.results import layout
from app.services.results.cutout import cut_out
from app.services.results.exports import coco_json, coco_rle, mask_to_polygons
from app.services.results.overlay import render_overlay

# PNG encoding releases the GIL, so a few threads encode in parallel.
_WRITE_THREADS = 4


class ResultFolder:
    """`with ResultFolder(final_dir) as folder:` write objects, then `commit(metadata)`."""

    def __init__(self, final_dir: Path) -> None:
        self.final_dir = final_dir
        self.tmp_dir = final_dir.with_name(layout.TMP_PREFIX + final_dir.name)

    def __enter__(self) -> "ResultFolder":
        with self._storage_errors():
            self.tmp_dir.mkdir(parents=True)
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # gone already after a commit

    def write_objects(self, image: np.ndarray, records: list[MaskRecord],
                      ) -> tuple[list[SavedObject], list[SkippedMask]]:
        """The overlay, then one mask and one cut-out per record (indexed in order).
        A record whose PNG comes out empty is listed as skipped instead."""
        with self._storage_errors(), ThreadPoolExecutor(_WRITE_THREADS) as pool:
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
        return objects, skipped

    def commit(self, metadata: JobMetadata) -> Path:
        """Write annotations.json, then metadata.json, and give the folder its final name."""
        with self._storage_errors():
            self._put(layout.ANNOTATIONS, coco_json(metadata))
            self._put(layout.METADATA, metadata.model_dump_json(indent=2).encode())
            os.rename(self.tmp_dir, self.final_dir)
        return self.final_dir

    def _put(self, name: str, data: bytes) -> None:
        if not data:
            raise OSError(f"{name} came out empty")
        path = self.tmp_dir / name
        path.write_bytes(data)
        if path.stat().st_size != len(data):
            raise OSError(f"{name}: {path.stat().st_size} of {len(data)} bytes written")

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            results_dir = self.final_dir.parent
            raise StorageError(f"Could not write results to {results_dir}: {exc}",
                               {"results_dir": str(results_dir), "reason": str(exc)}) from exc


def _encode_object(image: np.ndarray, index: int, record: MaskRecord,
                   ) -> tuple[SavedObject, bytes, bytes]:
    mask = record.mask()  # one object's pixels at a time: memory stays bounded
    cutout = cut_out(image, mask)
    entry = SavedObject(
        index=index, bbox=list(cutout.bbox), area=record.area,
        predicted_iou=round(record.predicted_iou, 6),
        stability_score=round(record.stability_score, 6),
        point_coords=record.point_coords, crop_box=record.crop_box,
        rle=coco_rle(record.rle), polygons=mask_to_polygons(mask),
        mask_file=layout.mask_file(index), object_file=layout.object_file(index))
    return entry, encode_mask(mask), encode_png(cutout.rgba)


def sweep_temporary_folders(results_dir: Path) -> int:
    """Remove `.tmp-*` folders a crashed process left behind; returns how many."""
    if not results_dir.is_dir():
        return 0
    stale = [p for p in results_dir.iterdir() if p.name.startswith(layout.TMP_PREFIX)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)
