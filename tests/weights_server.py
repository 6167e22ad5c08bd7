"""A loopback HTTP server that serves one checkpoint file, counts requests, and can
misbehave on demand, for the download tests."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WeightsServer:
    """Serves `payload` at any path on 127.0.0.1. Each request takes the next fault
    from `faults` ("drop": half the body then close, "hang": headers then silence;
    none left: the whole file); `delay_s` slows each 64 KiB chunk."""

    def __init__(self, payload: bytes, delay_s: float = 0.0, faults: list[str] = ()) -> None:
        self.payload, self.delay_s, self.faults = payload, delay_s, list(faults)
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests += 1
                fault = owner.faults.pop(0) if owner.faults else None
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.payload)))
                self.end_headers()
                if fault == "hang":
                    time.sleep(3)
                    return
                body = owner.payload[: len(owner.payload) // 2] if fault == "drop" else owner.payload
                for start in range(0, len(body), 64 * 1024):
                    time.sleep(owner.delay_s)
                    self.wfile.write(body[start:start + 64 * 1024])
                self.wfile.flush()

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/weights.pth"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "WeightsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
