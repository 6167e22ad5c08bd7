"""Who runs a job: `host:pid`, recorded in metadata.json and the job record."""

import os
import socket


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
