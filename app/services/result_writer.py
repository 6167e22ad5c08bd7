"""Write one job's result folder atomically.

Everything goes into a hidden `.tmp-<name>` folder first; only a complete,
checked folder is renamed to its final name, so a reader never sees a
half-written result and a failure leaves nothing behind.
"""

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app.core.errors import StorageError
from app.services.exports import coco_dataset, mask_to_polygons, mask_to_rle
from app.services.image_processor import write_mask, write_png
from app.services.object_extractor import ObjectExtractor
from app.services.overlay import render_overlay

TMP_PREFIX = ".tmp-"
OVERLAY, METADATA, ANNOTATIONS = "overlay.png", "metadata.json", "annotations.json"
# PNG encoding releases the GIL, so a few threads write in parallel.
_WRITE_THREADS = 4

MetadataBuilder = Callable[[list[dict[str, Any]], list[dict[str, Any]]], dict[str, Any]]


def write_job_folder(final_dir: Path, image: np.ndarray, records: list[dict[str, Any]],
                     extractor: ObjectExtractor, build_metadata: MetadataBuilder) -> dict[str, Any]:
    """Write overlay, masks, cut-outs and metadata for `records` (already sorted
    and filtered); return the metadata. Raises StorageError on a write failure."""
    tmp_dir = final_dir.with_name(TMP_PREFIX + final_dir.name)
    try:
        tmp_dir.mkdir(parents=True)
        objects, skipped = _write_images(tmp_dir, image, records, extractor)
        metadata = build_metadata(objects, skipped)
        (tmp_dir / METADATA).write_text(json.dumps(metadata, indent=2))
        (tmp_dir / ANNOTATIONS).write_text(json.dumps(coco_dataset(metadata)))
        if not _is_complete(tmp_dir / METADATA) or not _is_complete(tmp_dir / OVERLAY):
            raise OSError("overlay.png or metadata.json is missing or empty")
        os.rename(tmp_dir, final_dir)
        return metadata
    except OSError as exc:
        raise StorageError(f"Could not write results to {final_dir.parent}: {exc}",
                           {"results_dir": str(final_dir.parent), "reason": str(exc)}) from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _write_images(folder: Path, image: np.ndarray, records: list[dict[str, Any]],
                  extractor: ObjectExtractor) -> tuple[list[dict], list[dict]]:
    masks = [r["segmentation"] for r in records]
    with ThreadPoolExecutor(_WRITE_THREADS) as pool:
        overlay = pool.submit(lambda: write_png(folder / OVERLAY, render_overlay(image, masks)))
        jobs = [pool.submit(_write_object, folder, image, i, r, extractor)
                for i, r in enumerate(records)]
        overlay.result()
        written = [job.result() for job in jobs]
    objects, skipped = [], []
    for entry in written:
        files = [folder / entry["mask_file"], folder / entry["object_file"]]
        if all(_is_complete(f) for f in files):
            objects.append(entry)
        else:
            for f in files:
                f.unlink(missing_ok=True)
            skipped.append({"index": entry["index"], "area": entry["area"],
                            "reason": "file_missing_or_empty"})
    return objects, skipped


def _write_object(folder: Path, image: np.ndarray, index: int, record: dict[str, Any],
                  extractor: ObjectExtractor) -> dict[str, Any]:
    cutout = extractor.extract(image, record["segmentation"])
    mask_file, object_file = f"mask_{index}.png", f"object_{index}.png"
    write_mask(folder / mask_file, record["segmentation"])
    write_png(folder / object_file, cutout.rgba)
    return {
        "index": index,
        "bbox": list(cutout.bbox),
        "area": cutout.area,
        "predicted_iou": round(float(record["predicted_iou"]), 6),
        "stability_score": round(float(record["stability_score"]), 6),
        "point_coords": record["point_coords"],
        "crop_box": record["crop_box"],
        "rle": mask_to_rle(record["segmentation"]),
        "polygons": mask_to_polygons(record["segmentation"]),
        "mask_file": mask_file,
        "object_file": object_file,
    }


def _is_complete(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def sweep_temporary_folders(results_dir: Path) -> int:
    """Remove `.tmp-*` folders a crashed process left behind; returns how many."""
    if not results_dir.is_dir():
        return 0
    stale = [p for p in results_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)
