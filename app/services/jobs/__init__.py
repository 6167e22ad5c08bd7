"""The async job API's machinery: job records, their stores, and the two ways jobs run
(embedded: in this process; broker: Celery workers over Redis)."""
