"""A loopback HTTP server that serves one checkpoint file and counts requests."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WeightsServer:
    """Serves `payload` at any path on 127.0.0.1; `delay_s` slows each chunk."""

    def __init__(self, payload: bytes, delay_s: float = 0.0) -> None:
        self.payload = payload
        self.delay_s = delay_s
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.payload)))
                self.end_headers()
                for start in range(0, len(owner.payload), 64 * 1024):
                    time.sleep(owner.delay_s)
                    self.wfile.write(owner.payload[start:start + 64 * 1024])

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/weights.pth"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "WeightsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
