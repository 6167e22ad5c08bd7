"""A running job's stop signal, and the checkpoints where the job obeys it.

`StopSignal` is set to stop a job (cancelled, or past JOB_TIMEOUT_S). The pipeline
checks it between phases and batches of prompts; `stoppable(signal)` also makes it
the current job's signal in this thread, so that code deep inside a phase (the
generator's post-processing over thousands of candidates) can stop with a bare
`checkpoint()`, without a signal threaded through every call.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from app.core.errors import JobAbandoned


class StopSignal(threading.Event):
    """Set to stop a running job at its next checkpoint; `reason` (cancelled, timeout,
    requeued) says why, and the JobAbandoned it raises carries it."""

    reason = "cancelled"

    def stop(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()

    def check(self) -> None:
        """Raise JobAbandoned once set."""
        if self.is_set():
            raise JobAbandoned(self.reason)


_current: ContextVar[StopSignal | None] = ContextVar("stop_signal", default=None)


@contextmanager
def stoppable(signal: StopSignal) -> Iterator[None]:
    """Make `signal` the one `checkpoint()` obeys in this thread, for the block."""
    token = _current.set(signal)
    try:
        yield
    finally:
        _current.reset(token)


def checkpoint() -> None:
    """Stop here (JobAbandoned) if the current job's signal is set; a no-op outside a job."""
    signal = _current.get()
    if signal is not None:
        signal.check()
