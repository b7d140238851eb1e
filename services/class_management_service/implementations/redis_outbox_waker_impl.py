"""Wakes outbox relays through Redis pub/sub, so an event leaves right after its commit.

Redis only makes delivery faster: when it is down, relays fall back to polling and
requests are not slowed or failed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.class_management_service import metrics

logger = logging.getLogger(__name__)

WAKE_CHANNEL = "huleedu:class_management_service:outbox"
STOP_CHECK_SECONDS = 1.0


class RedisOutboxWakerImpl:
    """``OutboxWakerProtocol``: wakes this process's relay at once and others via Redis.

    Wake-ups are coalesced: at most one PUBLISH is in flight, and a wake that arrives while
    one is in flight, or within ``min_interval`` seconds after it, is answered by one more
    PUBLISH after that (one, however many arrived). So every commit is followed by a PUBLISH
    sent after it, at most ``min_interval`` (plus a Redis round trip) later, and under load a
    process sends at most ``1 / min_interval`` wake-ups a second rather than one per write;
    each relay then wakes as seldom, and finds more rows per pass.
    """

    def __init__(
        self, redis: Redis, wake_local: Callable[[], None], min_interval: float = 0.0
    ) -> None:
        self._redis = redis
        self._wake_local = wake_local
        self._min_interval = min_interval
        self._publisher: asyncio.Task[None] | None = None
        self._wanted = False

    async def wake(self) -> None:
        self._wake_local()
        self._wanted = True
        if self._publisher is None or self._publisher.done():
            # Fire and forget: a slow or absent Redis must not add to the request's latency.
            self._publisher = asyncio.create_task(self._publish_while_wanted())

    async def _publish_while_wanted(self) -> None:
        while self._wanted:
            self._wanted = False
            try:
                await self._redis.publish(WAKE_CHANNEL, b"1")
            except (RedisError, OSError):
                metrics.REDIS_ERRORS.labels("outbox_wake").inc()
            if self._min_interval:
                # Wakes that arrive meanwhile are answered by one PUBLISH after the pause.
                await asyncio.sleep(self._min_interval)

    async def drain(self) -> None:
        if self._publisher is not None:
            await asyncio.gather(self._publisher, return_exceptions=True)


async def listen_for_wakes(
    redis_url: str,
    wake_local: Callable[[], None],
    retry_seconds: float,
    stop: asyncio.Event | None = None,
) -> None:
    """Forward Redis wake messages to the local relay until ``stop`` is set or cancelled;
    reconnect on errors.

    It has its own connection without a read timeout: a subscriber waits for messages. It
    looks at ``stop`` at least every second, because redis-py can swallow a cancellation
    that lands while it connects: shutdown sets ``stop`` and cancels, and either ends it.
    """
    stop = stop or asyncio.Event()
    client = Redis.from_url(redis_url, socket_connect_timeout=1.0, health_check_interval=15)
    try:
        while not stop.is_set():
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(WAKE_CHANNEL)
                    while not stop.is_set():
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=STOP_CHECK_SECONDS
                        )
                        if message is not None and message.get("type") == "message":
                            wake_local()
            except (RedisError, OSError):
                metrics.REDIS_ERRORS.labels("outbox_listen").inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_seconds)
    finally:
        await client.aclose()
