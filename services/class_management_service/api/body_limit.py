"""An over-limit body gets its 413 to the client.

The service refuses a body over MAX_BODY_BYTES as soon as it knows (from Content-Length, or
after reading that much), usually while the client is still sending. A server that then
closes the connection makes the client's next write fail, and the client may see a reset
connection instead of the 413 that is already on its way. So before a 413 goes out, the
rest of the body is read and discarded, up to DRAIN_LIMIT_BYTES and within the request
deadline; a client that sends even more gets the 413 with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

DRAIN_LIMIT_BYTES = 8 * 1024 * 1024

_App = Any  # an ASGI application: (scope, receive, send) -> None


@dataclass
class _Body:
    received: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class DrainRefusedBodies:
    """ASGI middleware around the app: drain a refused body before its 413 is sent."""

    def __init__(self, app: _App, timeout_seconds: float) -> None:
        self._app = app
        self._timeout = timeout_seconds

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = _Body()

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                body.received += len(message.get("body", b""))
                if not message.get("more_body", False) or body.received > DRAIN_LIMIT_BYTES:
                    body.ended.set()
            else:  # http.disconnect
                body.ended.set()
            return message

        async def draining_send(message: Any) -> None:
            if (
                message["type"] == "http.response.start"
                and message["status"] == 413
                and not body.ended.is_set()
            ):
                # The app keeps receiving (and discarding) while its response waits here.
                try:
                    await asyncio.wait_for(body.ended.wait(), self._timeout)
                except TimeoutError:
                    pass
                if body.received > DRAIN_LIMIT_BYTES or not body.ended.is_set():
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, counting_receive, draining_send)
