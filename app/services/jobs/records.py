"""Job records: one owner for how they are created, changed and expired.

`DiskJobStore` (embedded mode) keeps one JSON file per job, replaced atomically;
`RedisJobStore` (broker mode, `redis_store`) one Redis key per job. Both refuse to
change a record once it is final (succeeded, failed, cancelled), so a late progress
report or a worker that finishes after a cancel cannot bring a job back.
"""

import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from app.core.errors import JobRecordUnreadable, ServiceError
from app.core.logging import get_logger
from app.schemas.jobs import FINAL_STATUSES, JobRecord

log = get_logger(__name__)

Change = Callable[[JobRecord], dict]  # the record -> the fields to change (empty: none)
# Job records expire with the results; when results are kept forever, after this long.
DEFAULT_RECORD_TTL_S = 7 * 24 * 3600


def now() -> datetime:
    return datetime.now(timezone.utc)


def failure(exc: ServiceError) -> dict:
    """A failed job's record fields: the usual envelope and its HTTP status."""
    return {"status": "failed", "error": exc.envelope(), "error_status": exc.status}


def parse_record(raw: bytes, job_id: str) -> JobRecord:
    """A stored record, or JobRecordUnreadable (logged): never mistaken for a missing one."""
    try:
        return JobRecord.model_validate_json(raw)
    except ValidationError as exc:
        log.error("job_record_unreadable", job_id=job_id, error=str(exc))
        raise JobRecordUnreadable("The job's record cannot be read", {"job_id": job_id}) from exc

class JobStore(ABC):
    @abstractmethod
    def create(self, record: JobRecord) -> None: ...

    @abstractmethod
    def get(self, job_id: str) -> JobRecord | None: ...

    @abstractmethod
    def update(self, job_id: str, change: Change) -> JobRecord | None:
        """Apply `change` atomically unless the record is final; the record after it."""

    def finish(self, job_id: str, attempt: int | None = None, **fields) -> JobRecord | None:
        """Move a job to a final status (unless it already has one) with `fields`;
        with `attempt`, only while the record is still that run of the job (a worker
        judged lost must not overwrite the run that replaced it)."""
        return self.update(job_id, lambda r: {} if attempt not in (None, r.attempt) else {
            "finished_at": now(), **fields})


class DiskJobStore(JobStore):
    """`<dir>/<job_id>.json`, written to a temporary file and renamed into place."""

    def __init__(self, folder: Path, ttl_s: float | None) -> None:
        self.folder, self.ttl_s = folder, ttl_s or DEFAULT_RECORD_TTL_S
        self._lock = threading.Lock()  # progress comes from worker threads

    def create(self, record: JobRecord) -> None:
        with self._lock:
            self._write(record)

    def get(self, job_id: str) -> JobRecord | None:
        try:
            raw = (self.folder / f"{job_id}.json").read_bytes()
        except FileNotFoundError:
            return None
        return parse_record(raw, job_id)

    def update(self, job_id: str, change: Change) -> JobRecord | None:
        with self._lock:
            record = self.get(job_id)
            if record is None or record.final:
                return record
            fields = change(record)
            if not fields:
                return record
            record = JobRecord.model_validate({**record.model_dump(), **fields})
            self._write(record)
            return record

    def mark_interrupted(self, error: ServiceError) -> int:
        """At start-up: jobs left queued or running by a previous process failed."""
        count = 0
        for path in self._paths():
            try:
                record = self.get(path.stem)
            except JobRecordUnreadable:
                continue  # logged; GET /jobs answers it as unreadable
            if record is not None and not record.final:
                self.finish(record.job_id, **failure(error))
                count += 1
        return count

    def expire(self) -> int:
        """Remove final records older than the results' time to live."""
        cutoff, removed = time.time() - self.ttl_s, 0
        for path in self._paths():
            try:
                if path.stat().st_mtime < cutoff and json.loads(path.read_bytes()).get(
                        "status") in FINAL_STATUSES:
                    path.unlink()
                    removed += 1
            except (OSError, ValueError):
                continue
        return removed

    def _paths(self) -> list[Path]:
        return list(self.folder.glob("*.json")) if self.folder.is_dir() else []

    def _write(self, record: JobRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{record.job_id}.json"
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        tmp.write_text(record.model_dump_json())
        os.replace(tmp, path)
