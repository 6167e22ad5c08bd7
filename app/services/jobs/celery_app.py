"""The Celery application of broker mode: one place for its delivery settings.

- `task_acks_late` + `task_reject_on_worker_lost`: a job is acknowledged only when it
  ended, so a worker that dies (kill -9, OOM killer, machine lost) leaves it in Redis.
- Redis' `visibility_timeout` = JOB_TIMEOUT_S + REDELIVERY_MARGIN_S: an unacknowledged
  job goes back to the queue after that long, never while it may still be running
  (a running job is abandoned at JOB_TIMEOUT_S).
- `worker_prefetch_multiplier=1` with a pool of one thread: each worker holds exactly
  the job it runs, so a burst spreads over every worker. A thread, not a fork: nothing
  forks after CUDA was initialised; not the solo pool: the job runs beside the main
  loop, which still answers control commands (`celery inspect`) while a job runs.

`celery -A app.services.jobs.celery_app inspect active` (or `ping`, `stats`) reaches
the workers of this environment's BROKER_URL: the module's `celery` attribute is made
from the settings when the celery command loads it, without importing torch.
"""

from celery import Celery

from app.core.config import Settings, get_settings

QUEUE = "sam-jobs"
TASK = "sam.segment"
# Broker socket bounds: a broker that went away answers an error, never a hang.
SOCKET_TIMEOUT_S = 5
CONNECT_TIMEOUT_S = 3


def make_celery(settings: Settings) -> Celery:
    app = Celery("sam", broker=settings.BROKER_URL, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_pool="threads",
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            # Look for jobs of dead workers every 2 s (once they passed the timeout).
            "unacked_restore_interval": 2, "unacked_restore_throttle": 1,
            "socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": CONNECT_TIMEOUT_S,
        },
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 1},
    )
    return app


def __getattr__(name: str) -> Celery:
    # Made on first access, not at import: the front and the worker make their own from
    # the settings they were given; only the celery command line reads this one.
    if name == "celery":
        return make_celery(get_settings())
    raise AttributeError(name)
