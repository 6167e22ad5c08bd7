"""ASGI middleware that counts and times every HTTP request (app.services.metrics)."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.metrics import observe_request


class MetricsMiddleware:
    """ASGI middleware that counts and times every HTTP request.

    The route label is the matched route's template (`/results/{job_id}/{file}`);
    requests that match no API route are labelled `other`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            observe_request(scope["method"], route, status, time.perf_counter() - started)
