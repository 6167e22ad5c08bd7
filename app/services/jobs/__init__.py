"""How jobs run, behind one interface: `Jobs`.

- embedded (no BROKER_URL, `embedded.py`): in this process, through the job queue
  (`queue.py`), job records as JSON files (`records.py`);
- broker (`broker.py`): Celery workers over Redis (`task.py` runs on the workers),
  job records in Redis (`redis_records.py`).

`start_jobs` picks one; nothing outside this package asks which one it got. Both
record a job's outcome through `tracking.record_outcome` and follow the one
JOB_TIMEOUT_S rule of `queue.py`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from app.core.config import Settings
from app.schemas import JobRequest, SegmentResponse
from app.schemas.jobs import JobRecord

IsDisconnected = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class ModelState:
    """What /health and /info say about the model (the workers hold it in broker mode)."""

    mode: str  # "embedded" or "broker"
    loaded: bool
    model_type: str
    device: str
    precision: str
    precision_fallback_reason: str | None = None
    precision_reason: str | None = None


class Jobs(Protocol):
    async def submit(self, request: JobRequest) -> JobRecord:
        """POST /jobs: record the job and start it (ServerBusy when it cannot wait)."""

    async def segment(self, request: JobRequest, is_disconnected: IsDisconnected | None,
                      ) -> SegmentResponse:
        """POST /segment: run the job and answer once it is done."""

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, found by its id (one read, no listing)."""

    async def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel: a queued job never runs, a running one stops and leaves nothing."""

    async def readiness(self) -> tuple[bool, dict]:
        """Whether jobs can run now, and the state that says why (GET /health/ready)."""

    def model_state(self) -> ModelState: ...

    def metrics(self) -> bytes:
        """The Prometheus exposition, with this runner's gauges read now."""

    def expire_records(self) -> int:
        """Remove job records past their time to live; how many (retention's schedule)."""

    async def shutdown(self) -> None:
        """Stop: unfinished jobs of this process are recorded as interrupted."""


async def start_jobs(settings: Settings) -> Jobs:
    """The jobs runner RESULTS_DIR and BROKER_URL ask for (embedded mode loads the model)."""
    if settings.BROKER_URL:
        from app.services.jobs.broker import BrokerJobs

        return BrokerJobs(settings)
    from app.services.jobs.embedded import EmbeddedJobs

    return await EmbeddedJobs.start(settings)
