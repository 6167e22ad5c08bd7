"""Admission of accepted jobs (POST /jobs): a queue place is taken when the job is
accepted, not when it starts waiting, so a burst cannot overshoot the bound."""

import asyncio

import pytest

from app.core.errors import ServerBusy
from app.services.jobs.queue import JobQueue


def test_a_burst_of_admissions_stops_at_slots_plus_queue_places():
    queue = JobQueue(max_running=1, max_waiting=1, timeout_s=None)
    held = [queue.admit(), queue.admit()]
    with pytest.raises(ServerBusy):
        queue.admit()
    held[0].release()
    held[0].release()  # releasing twice gives back one place only
    held.append(queue.admit())
    with pytest.raises(ServerBusy):
        queue.admit()


def test_an_admitted_job_keeps_its_place_while_it_waits_and_runs():
    async def scenario() -> list[str]:
        queue = JobQueue(max_running=1, max_waiting=0, timeout_s=None)
        admission = queue.admit()
        job = asyncio.create_task(queue.run(lambda cancel: "done", lambda result: None,
                                            admission=admission))
        await asyncio.sleep(0)  # the job moved from admitted to waiting or running
        refused = []
        try:
            queue.admit()
        except ServerBusy:
            refused.append("busy")
        return [await job, *refused, str(queue.admitted)]

    assert asyncio.run(scenario()) == ["done", "busy", "0"]
