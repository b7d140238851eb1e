"""DrainRefusedBodies: a 413 goes out only once the refused body was read (up to a bound)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.class_management_service.api.body_limit import (
    DRAIN_LIMIT_BYTES,
    DrainRefusedBodies,
)

CHUNK = 1024 * 1024


async def _refusing_app(scope: Any, receive: Any, send: Any) -> None:
    """Like Quart: one task keeps receiving while the handler answers 413 at once."""

    async def keep_receiving() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    receiver = asyncio.ensure_future(keep_receiving())
    await send({"type": "http.response.start", "status": 413, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    receiver.cancel()


async def _serve(chunks: int) -> tuple[int, list[Any]]:
    """Returns how many chunks were received before the 413 started, and what was sent."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for index in range(chunks):
        queue.put_nowait(
            {"type": "http.request", "body": b"x" * CHUNK, "more_body": index < chunks - 1}
        )
    queue.put_nowait({"type": "http.disconnect"})
    received = 0
    sent: list[Any] = []

    async def receive() -> Any:
        nonlocal received
        await asyncio.sleep(0)  # the body arrives over time
        message = await queue.get()
        received += message["type"] == "http.request"
        return message

    async def send(message: Any) -> None:
        sent.append((received, message))

    await DrainRefusedBodies(_refusing_app, timeout_seconds=5)({"type": "http"}, receive, send)
    return sent[0][0], [message for _, message in sent]


async def test_the_413_waits_until_the_whole_body_was_read() -> None:
    before_413, sent = await _serve(chunks=3)
    assert before_413 == 3
    assert (b"connection", b"close") not in sent[0]["headers"]


async def test_a_body_over_the_drain_limit_gets_its_413_and_the_connection_closes() -> None:
    chunks = DRAIN_LIMIT_BYTES // CHUNK + 20
    before_413, sent = await _serve(chunks=chunks)
    # It stopped waiting once past the limit, long before the end of the body.
    assert DRAIN_LIMIT_BYTES // CHUNK < before_413 < chunks
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
