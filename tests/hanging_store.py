"""A store that hangs: a loopback TCP server that accepts every connection and never
answers a byte. Bounded: it closes everything after `lifetime_s`, or when stopped."""

import socket
import threading
import time

import pytest


class HangingStore:
    def __init__(self, lifetime_s: float = 120) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        self._until = time.monotonic() + lifetime_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        held = []
        while not self._stopped.is_set() and time.monotonic() < self._until:
            try:
                held.append(self._listener.accept()[0])
            except socket.timeout:
                continue
        for connection in held:
            connection.close()
        self._listener.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)


@pytest.fixture
def hanging_store():
    store = HangingStore()
    yield store
    store.stop()
