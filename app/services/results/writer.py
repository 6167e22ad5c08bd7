"""Write one job's result folder so that it is all there or absent.

The files go through the storage's `FolderWriter` (see app.services.results.storage):
`commit` writes the annotations, then metadata.json last, and makes the folder
visible. A folder left without a commit (any error, a cancelled job) is removed with
everything in it, so a reader never sees a half-written result.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.schemas import JobMetadata, SavedObject, SkippedMask
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


class ResultFolder:
    """`with ResultFolder(storage, name) as folder:` write objects, then `commit(metadata)`."""

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage, self.name = storage, name
        self.location = storage.folder_location(name)
        self._committed = False

    def __enter__(self) -> "ResultFolder":
        self._writer = self.storage.begin(self.name)
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            self._writer.abort()

    def write_objects(self, image: np.ndarray, records: list[MaskRecord],
                      ) -> tuple[list[SavedObject], list[SkippedMask]]:
        """The overlay, then one mask and one cut-out per record (indexed in order).
        A record whose PNG comes out empty is listed as skipped instead."""
        pixels = image.shape[0] * image.shape[1]
        threads = max(1, min(_WRITE_THREADS, _WRITE_BUDGET // (pixels * _BYTES_PER_PIXEL)))
        with ThreadPoolExecutor(threads) as pool:
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

    def commit(self, metadata: JobMetadata) -> str:
        """Write annotations.json, then metadata.json, and make the folder visible."""
        self._put(layout.ANNOTATIONS, coco_json(metadata))
        self._put(layout.METADATA, metadata.model_dump_json(indent=2).encode())
        self._writer.commit()
        self._committed = True
        return self.location

    def _put(self, name: str, data: bytes) -> None:
        self._writer.put(name, data)


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
