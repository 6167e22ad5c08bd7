"""Job records in Redis (broker mode): one JSON string per job under `sam:job:<id>`,
expiring with the results. Changes run in an optimistic transaction (WATCH), so the
API's cancel and a worker's progress never overwrite each other."""

import redis

from app.core.errors import BrokerUnavailable
from app.schemas.jobs import JobRecord
from app.services.jobs.records import DEFAULT_RECORD_TTL_S, Change, JobStore, parse_record

KEY_PREFIX = "sam:job:"


def broker_errors(exc: redis.RedisError) -> BrokerUnavailable:
    return BrokerUnavailable("The job broker (Redis) cannot be reached", {"reason": str(exc)})


class RedisJobStore(JobStore):
    def __init__(self, client: redis.Redis, ttl_s: float | None) -> None:
        self.client = client
        self.ttl_s = int(ttl_s or DEFAULT_RECORD_TTL_S)

    def create(self, record: JobRecord) -> None:
        try:
            self.client.set(KEY_PREFIX + record.job_id, record.model_dump_json(), ex=self.ttl_s)
        except redis.RedisError as exc:
            raise broker_errors(exc) from exc

    def get(self, job_id: str) -> JobRecord | None:
        try:
            raw = self.client.get(KEY_PREFIX + job_id)
        except redis.RedisError as exc:
            raise broker_errors(exc) from exc
        return None if raw is None else parse_record(raw, job_id)

    def update(self, job_id: str, change: Change) -> JobRecord | None:
        key, outcome = KEY_PREFIX + job_id, {}

        def transaction(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            record = None if raw is None else parse_record(raw, job_id)
            outcome["record"] = record
            if record is None or record.final:
                return
            fields = change(record)
            if fields:
                record = JobRecord.model_validate({**record.model_dump(), **fields})
                outcome["record"] = record
                pipe.multi()
                pipe.set(key, record.model_dump_json(), ex=self.ttl_s)

        try:
            self.client.transaction(transaction, key)
        except redis.RedisError as exc:
            raise broker_errors(exc) from exc
        return outcome["record"]
