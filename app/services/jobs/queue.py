"""Admission control for generations: a bounded number run, a bounded number wait.

- At most `max_running` jobs run at once, each in one worker thread, and at most
  `max_waiting` wait for a slot; anyone beyond is refused at once with ServerBusy
  (503 + Retry-After) instead of piling up memory and latency.
- A waiting client that disconnects leaves the queue without costing a generation.
- JOB_TIMEOUT_S, the one deadline rule (the workers of broker mode follow it too): a
  job may *run* that long, counted from the moment it leaves the queue and starts;
  time spent waiting does not count. Past it the job answers SegmentationTimeout
  (504) at once. A thread
  running torch cannot be killed, so the job is *abandoned* instead: its cancel
  event is set, the pipeline stops at its next phase boundary, and whatever it
  still produced is discarded inside the worker thread itself (so this holds even
  when the event loop has stopped, e.g. at shutdown). Its slot is released only
  when the thread really ends, so `running` never understates the work in progress.
The same happens when the request task is cancelled (uvicorn's graceful-shutdown
timeout). One queue per process, and one model per process: the limit is per model.
"""

import asyncio
import math
import threading
import time
from typing import Awaitable, Callable, Generic, TypeVar

from app.core.errors import ClientDisconnected, JobAbandoned, SegmentationTimeout, ServerBusy
from app.core.logging import get_logger
from app.services.pipeline import StopSignal

log = get_logger(__name__)
T = TypeVar("T")
_POLL_S = 0.25  # how often a waiting job checks whether its client is still there


class _Ticket(Generic[T]):
    """One job's hand-over between its worker thread and its request."""

    def __init__(self) -> None:
        self.cancel = StopSignal()
        self.lock = threading.Lock()
        self.finished = False
        self.abandoned = False


class Admission:
    """A queue place taken at once for a job that starts waiting later (POST /jobs
    answers before its job reaches the queue): held until `run` takes the job or
    the job is dropped, so a burst of submissions cannot overshoot MAX_QUEUED_JOBS."""

    def __init__(self, queue: "JobQueue") -> None:
        self.queue, self.held = queue, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.queue.admitted -= 1


class JobQueue:
    """Runs blocking jobs in worker threads, `max_running` at once."""

    def __init__(self, max_running: int, max_waiting: int, timeout_s: float | None) -> None:
        self.max_running, self.max_waiting, self.timeout_s = max_running, max_waiting, timeout_s
        self.running = 0
        self.waiting = 0
        self.admitted = 0  # accepted jobs not yet waiting (see Admission)
        self._slots = asyncio.Semaphore(max_running)
        self._threads: set[asyncio.Future] = set()
        self._mean_job_s = 1.0  # moving average, for Retry-After

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the queue ahead times the mean job."""
        ahead = (self.running + self.waiting + self.admitted) / self.max_running
        return max(1, math.ceil(ahead * self._mean_job_s))

    def check_capacity(self) -> None:
        """ServerBusy (503 + Retry-After) when every slot and queue place is taken."""
        if self.running + self.waiting + self.admitted >= self.max_running + self.max_waiting:
            raise ServerBusy("Every generation slot and queue place is taken",
                             self.retry_after_s(), running=self.running,
                             waiting=self.waiting + self.admitted)

    def admit(self) -> Admission:
        """Take a queue place now (ServerBusy when there is none) for a later `run`."""
        self.check_capacity()
        self.admitted += 1
        return Admission(self)

    async def run(self, work: Callable[[StopSignal], T], discard: Callable[[T], None],
                  is_disconnected: Callable[[], Awaitable[bool]] | None = None,
                  admission: Admission | None = None) -> T:
        """Run `work(cancel_event)` in a worker thread once a slot is free. `discard`
        undoes a result nobody will receive (the job timed out or was cancelled).
        `admission`: the place `admit` took for this job (else capacity is checked now)."""
        if admission is None:
            self.check_capacity()
        else:
            admission.release()  # and, with no await in between, the job starts waiting
        await self._wait_for_slot(is_disconnected)
        ticket: _Ticket[T] = _Ticket()
        self.running += 1
        thread = asyncio.ensure_future(asyncio.to_thread(self._guarded, work, discard, ticket))
        self._threads.add(thread)
        thread.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.shield(thread), self.timeout_s)
        except TimeoutError:
            if not self._abandon(ticket, "timeout"):
                return await thread  # it finished right at the deadline: deliver it
            log.warning("job_timeout", timeout_s=self.timeout_s)
            raise SegmentationTimeout.after(self.timeout_s)
        except asyncio.CancelledError:
            if not self._abandon(ticket, "cancelled"):
                thread.add_done_callback(lambda done: _discard_done(done, discard))
            log.warning("job_cancelled")
            raise

    async def drain(self, timeout_s: float | None) -> int:
        """Wait for running worker threads to end; returns how many did not in time."""
        pending = set(self._threads)
        if not pending:
            return 0
        log.info("shutdown_waiting_for_jobs", running=len(pending))
        _, not_done = await asyncio.wait(pending, timeout=timeout_s)
        return len(not_done)

    async def _wait_for_slot(self, is_disconnected) -> None:
        # One acquire task, kept for the whole wait, so waiters keep their FIFO place.
        self.waiting += 1
        acquire = asyncio.ensure_future(self._slots.acquire())
        try:
            while not acquire.done():
                await asyncio.wait({acquire}, timeout=_POLL_S)
                if not acquire.done() and is_disconnected is not None and await is_disconnected():
                    log.info("queued_client_disconnected")
                    raise ClientDisconnected("The client disconnected while its job was queued")
        except BaseException:
            if acquire.done() and not acquire.cancelled():
                self._slots.release()
            acquire.cancel()
            raise
        finally:
            self.waiting -= 1

    def _guarded(self, work: Callable[[StopSignal], T], discard: Callable[[T], None],
                 ticket: _Ticket[T]) -> T:
        started = time.monotonic()
        try:
            result = work(ticket.cancel)
        finally:
            self._mean_job_s = 0.7 * self._mean_job_s + 0.3 * (time.monotonic() - started)
        with ticket.lock:
            ticket.finished = True
            keep = not ticket.abandoned
        if not keep:
            discard(result)
            raise JobAbandoned(ticket.cancel.reason)
        return result

    @staticmethod
    def _abandon(ticket: _Ticket, reason: str) -> bool:
        """Mark the job abandoned; False when it had already finished with a result."""
        with ticket.lock:
            if ticket.finished:
                return False
            ticket.abandoned = True
        ticket.cancel.stop(reason)
        return True

    def _finished(self, thread: asyncio.Future) -> None:
        self._threads.discard(thread)
        self.running -= 1
        self._slots.release()
        if not thread.cancelled() and isinstance(thread.exception(), JobAbandoned):
            log.info("abandoned_job_ended")


def _discard_done(done: asyncio.Future, discard: Callable) -> None:
    if not done.cancelled() and done.exception() is None:
        # Deleting a folder (or bucket keys) blocks: not on the event loop.
        asyncio.get_running_loop().run_in_executor(None, discard, done.result())
