"""The upload size rule, owned here and nowhere else: MAX_IMAGE_SIZE_MB.

Two checks, one error (`400 INVALID_IMAGE`, `details = {"reason": "too_large",
"max_bytes": N}`):
- `UploadLimitMiddleware` bounds the request body while it streams in: refused at
  once when Content-Length says it is too large, else as soon as the counted bytes
  pass the limit (chunked uploads too). Nothing over the limit is buffered.
- `read_image_upload` checks the image part itself, once the form is parsed (the body
  limit leaves room for the other form fields).

A refusal is answered with a *lingering close*, as nginx and Apache do: the answer is
sent at once, then the rest of the body is read and thrown away (bounded in bytes and
time) before the connection is closed. Closing a socket with unread data makes the
kernel send a reset, and a client that sends its whole body before reading (Python's
http.client, urllib, many SDKs) then sees "connection reset" instead of the answer.
"""

import asyncio
import time

from fastapi import UploadFile
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import InvalidImage

# Room for the form fields (parameters, prompts) next to the image in one request body.
FORM_FIELDS_ALLOWANCE = 64 * 1024
# Lingering close bounds: a client that keeps sending past these is cut off.
_LINGER_MAX_BYTES = 256 * 1024 * 1024
_LINGER_MAX_S = 30.0
_LINGER_IDLE_S = 2.0


def too_large(max_image_bytes: int) -> InvalidImage:
    return InvalidImage("too_large", "The upload exceeds MAX_IMAGE_SIZE_MB", max_bytes=max_image_bytes)


async def read_image_upload(image: UploadFile, max_image_bytes: int) -> bytes:
    """The uploaded image's bytes, or InvalidImage(too_large)."""
    data = await image.read(max_image_bytes + 1)
    if len(data) > max_image_bytes:
        raise too_large(max_image_bytes)
    return data


class _BodyTooLarge(Exception):
    """Raised inside the app's receive; the middleware answers instead of the app."""


class UploadLimitMiddleware:
    """Limit the body of POST requests to `paths` to the image limit plus the form allowance."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...], max_image_bytes: int) -> None:
        self.app, self.paths, self.max_image_bytes = app, paths, max_image_bytes
        self.max_body_bytes = max_image_bytes + FORM_FIELDS_ALLOWANCE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await self._refuse(headers, receive, send)
        counted, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal counted, refused
            message = await receive()
            counted += len(message.get("body", b""))
            if counted > self.max_body_bytes:
                refused = True
                raise _BodyTooLarge()
            return message

        async def send_unless_refused(message: Message) -> None:
            if not refused:  # the app's own answer to _BodyTooLarge is replaced below
                await send(message)

        try:
            await self.app(scope, limited_receive, send_unless_refused)
        except _BodyTooLarge:
            pass
        if refused:
            await self._refuse(headers, receive, send)

    async def _refuse(self, headers: Headers, receive: Receive, send: Send) -> None:
        body = JSONResponse(too_large(self.max_image_bytes).envelope()).body  # as every error
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        # The whole answer goes out now; the response stays open while the body drains.
        await send({"type": "http.response.body", "body": body, "more_body": True})
        if headers.get("expect", "").lower() != "100-continue":  # such a client sends nothing more
            await _drain(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _drain(receive: Receive) -> None:
    """Read and discard the request body until it ends or a bound is reached."""
    deadline, drained = time.monotonic() + _LINGER_MAX_S, 0
    while drained <= _LINGER_MAX_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), min(left, _LINGER_IDLE_S))
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        drained += len(message.get("body", b""))
