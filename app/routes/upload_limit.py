"""A hard cap on the request body of an upload route, enforced while it streams in.

The body is refused as soon as it is known to be too large: at once when the
Content-Length header says so (before any of it is read), else when the bytes
counted so far pass the limit (a chunked upload is cut off mid-stream). Nothing
over the limit is ever buffered or spooled to disk.

The refusal is raised as an HTTPException(413) from `receive`, because FastAPI
re-raises HTTPExceptions from form parsing unchanged; the app's handler turns
413 into the standard 400 INVALID_IMAGE envelope with `reason: too_large`.
(Starlette's own body-limit middleware would replace that envelope with a
plain-text 413, so it is not used here.)
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class UploadTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="The upload exceeds MAX_IMAGE_SIZE_MB")


class UploadLimitMiddleware:
    """Limit the body of requests to `paths` to `max_bytes`."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...], max_bytes: int) -> None:
        self.app, self.paths, self.max_bytes = app, paths, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        too_large = declared.isdigit() and int(declared) > self.max_bytes
        counted = 0

        async def limited_receive() -> Message:
            nonlocal counted
            if too_large:
                raise UploadTooLarge()
            message = await receive()
            counted += len(message.get("body", b""))
            if counted > self.max_bytes:
                raise UploadTooLarge()
            return message

        await self.app(scope, limited_receive, send)
