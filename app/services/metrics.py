"""Prometheus metrics: what the service counts, and the few functions that record it.

- `http_requests_total` / `http_request_duration_seconds`: by method, route
  template (never the raw path, so job ids do not explode the label set) and status.
- `segmentation_phase_duration_seconds`: per pipeline phase of each finished job.
- `segmentation_jobs_in_flight`: jobs inside the pipeline right now (queued or running);
  `segmentation_jobs_running` / `segmentation_jobs_waiting`: the job queue's state.
- `model_load_seconds`: how long the loaded model took to load.
- `segmentation_job_duration_seconds{status}`: acceptance to final status of each job
  run by this process (a worker serves its own on WORKER_METRICS_PORT).
- `segmentation_queue_depth` / `segmentation_workers_seen`: broker mode, read at scrape.

GET /metrics renders them with `render_metrics`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("http_request_duration_seconds", "Time to answer an HTTP request",
                          ["method", "route", "status"], buckets=_SECONDS_BUCKETS)
PHASE_DURATION = Histogram("segmentation_phase_duration_seconds",
                           "Duration of each pipeline phase of a finished job "
                           "(phase=completed is the whole job)",
                           ["phase"], buckets=_SECONDS_BUCKETS)
JOBS_IN_FLIGHT = Gauge("segmentation_jobs_in_flight", "Jobs inside the pipeline right now")
JOBS_RUNNING = Gauge("segmentation_jobs_running", "Generations running now")
JOBS_WAITING = Gauge("segmentation_jobs_waiting", "Jobs queued for a generation slot (queue depth)")
JOB_DURATION = Histogram("segmentation_job_duration_seconds",
                         "Seconds from a job's acceptance to its final status, by that status",
                         ["status"], buckets=_SECONDS_BUCKETS)
QUEUE_DEPTH = Gauge("segmentation_queue_depth", "Broker mode: jobs waiting in the broker's queue")
WORKERS_SEEN = Gauge("segmentation_workers_seen", "Broker mode: workers that reported lately")
MODEL_LOAD_SECONDS = Gauge("model_load_seconds", "Seconds the loaded model took to load",
                           ["model_type", "device"])


@contextmanager
def jobs_in_flight() -> Iterator[None]:
    """Count a job as in flight for the duration of the block."""
    with JOBS_IN_FLIGHT.track_inprogress():
        yield


def observe_phases(timings_ms: dict[str, float]) -> None:
    """Record a finished job's phase durations (the pipeline measures them in ms)."""
    for phase, ms in timings_ms.items():
        PHASE_DURATION.labels(phase).observe(ms / 1000)


def observe_job(record) -> None:
    """Record a job that reached its final status (a JobRecord)."""
    if record.finished_at is not None:
        seconds = (record.finished_at - record.created_at).total_seconds()
        JOB_DURATION.labels(record.status).observe(max(seconds, 0.0))


def set_broker_state(queue_depth: int, workers: int) -> None:
    QUEUE_DEPTH.set(queue_depth)
    WORKERS_SEEN.set(workers)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_DURATION.labels(*labels).observe(seconds)


def set_queue_state(jobs_running: int, jobs_waiting: int) -> None:
    """Embedded mode: the in-process job queue's state, read at scrape time."""
    JOBS_RUNNING.set(jobs_running)
    JOBS_WAITING.set(jobs_waiting)


def render_metrics(model_load: tuple[str, str, float] | None) -> bytes:
    """The Prometheus text exposition of every metric, with the model's load time
    (`(model_type, device, seconds)`) read at scrape time."""
    if model_load is not None:
        MODEL_LOAD_SECONDS.labels(*model_load[:2]).set(model_load[2])
    return generate_latest()
