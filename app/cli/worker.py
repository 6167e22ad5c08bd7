"""`python -m app worker`: run broker-mode jobs on this machine (one per GPU).

Needs BROKER_URL (and the same RESULTS_DIR as the API). Loads the model once with
the server's `prepare_model`, then takes one job at a time from Redis in a pool of
one thread (no fork after CUDA was initialised; the main loop still answers
`celery -A app.services.jobs.celery_app inspect active` while a job runs). Start one
worker per GPU (`DEVICE=cuda`, `CUDA_VISIBLE_DEVICES=<n>`) or one per CPU machine.

Readiness: every WORKER_LOST_AFTER_S / 3 (10 s), once its model is loaded, the worker
records a beat (its host:pid in the `sam:workers` sorted set, the API's `workers seen`)
and touches WORKER_READY_FILE; the file is removed when Redis cannot be reached and when
the worker stops. A kill -9 leaves it, so the probe reads its age (README).
Exit status: 0 after a normal stop, 1 when the model could not be prepared, 2
without BROKER_URL.
"""

import argparse
import asyncio
import sys
import threading

from app.core.config import get_settings
from app.core.errors import ServiceError
from app.core.logging import clear_job, get_logger, setup_logger

log = get_logger(__name__)


def add_parser(verbs: argparse._SubParsersAction, name: str) -> None:
    verbs.add_parser(name, help="run broker-mode jobs (needs BROKER_URL)", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    setup_logger(settings.LOG_LEVEL, settings.LOG_FORMAT)
    if not settings.BROKER_URL:
        print("python -m app worker needs BROKER_URL=redis://host:port/db", file=sys.stderr)
        return 2
    # Imported here: torch takes seconds to import, and --help should not wait.
    from celery.signals import task_postrun

    from app.services.identity import worker_name
    from app.services.jobs import task
    from app.services.jobs.broker import WORKERS_KEY, redis_client
    from app.services.jobs.celery_app import QUEUE, TASK, make_celery
    from app.services.jobs.redis_records import RedisJobStore
    from app.services.model.bootstrap import prepare_model

    try:
        manager = asyncio.run(prepare_model(settings))
    except ServiceError as exc:
        log.error("worker_startup_failed", error_code=exc.code, message=exc.message, **exc.details)
        return 1
    client = redis_client(settings)
    store = RedisJobStore(client, settings.results_ttl_s)
    task.configure(task.WorkerRuntime(settings, manager, store, client))
    celery = make_celery(settings)
    celery.task(name=TASK, ignore_result=True)(task.execute)
    # The pool's thread runs job after job: its log context must not outlive a job.
    task_postrun.connect(lambda **_: clear_job(), weak=False)
    name = worker_name()
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, daemon=True,
                            args=(client, name, settings, stop))
    beat.start()
    # Detects any worker's lost job (its own included, were it ever silent) within seconds.
    from app.services.jobs.liveness import watch
    threading.Thread(target=watch, daemon=True,
                     args=(client, store, celery, settings, stop)).start()
    if settings.WORKER_METRICS_PORT:
        from prometheus_client import start_http_server

        start_http_server(settings.WORKER_METRICS_PORT)
    log.info("worker_ready", worker=name, model_type=manager.model_type, device=manager.device,
             queue=QUEUE, visibility_timeout_s=settings.visibility_timeout_s)
    try:
        # The pool as celery_app configures it (the command line would default to prefork).
        celery.worker_main(["worker", f"--pool={celery.conf.worker_pool}",
                            f"--concurrency={celery.conf.worker_concurrency}", f"--hostname={name}",
                            "--without-gossip", "--without-mingle", "-Q", QUEUE,
                            f"--loglevel={settings.LOG_LEVEL}"])
    finally:
        stop.set()
        beat.join(timeout=5)  # so that no late beat recreates the ready file
        settings.WORKER_READY_FILE.unlink(missing_ok=True)
        try:
            client.zrem(WORKERS_KEY, name)
        except Exception:  # noqa: BLE001 - the broker may be gone at shutdown
            pass
    return 0


def _heartbeat(client, name: str, settings, stop: threading.Event) -> None:
    """Beat while the worker runs (as often as its jobs beat: WORKER_LOST_AFTER_S / 3);
    the ready file says whether the last beat got through."""
    from app.services.jobs.broker import beat
    from app.services.jobs.liveness import beat_interval_s

    ready_file = settings.WORKER_READY_FILE
    while not stop.is_set():
        try:
            beat(client, name, settings.WORKER_LOST_AFTER_S)
            ready_file.touch()
        except Exception as exc:  # noqa: BLE001 - keep beating once the broker is back
            ready_file.unlink(missing_ok=True)
            log.warning("worker_heartbeat_failed", error=str(exc))
        stop.wait(beat_interval_s(settings))
