"""The Redis outbox waker on a real Redis: coalesced PUBLISHes, none missed after a commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.class_management_service.implementations.redis_outbox_waker_impl import (
    WAKE_CHANNEL,
    RedisOutboxWakerImpl,
    listen_for_wakes,
)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _messages_until_quiet(pubsub: object, quiet_seconds: float = 0.3) -> int:
    count = 0
    while True:
        message = await pubsub.get_message(  # type: ignore[attr-defined]
            ignore_subscribe_messages=True, timeout=quiet_seconds
        )
        if message is None:
            return count
        count += 1


async def test_a_burst_of_wakes_is_coalesced_but_always_followed_by_a_publish(
    redis: Redis,
) -> None:
    local_wakes: list[int] = []
    waker = RedisOutboxWakerImpl(redis, lambda: local_wakes.append(1))
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(WAKE_CHANNEL)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation

        for _ in range(200):
            await waker.wake()
        await waker.drain()
        burst = await _messages_until_quiet(pubsub)

        # A wake after the burst settled is published again: nothing is swallowed.
        await waker.wake()
        await waker.drain()
        after = await _messages_until_quiet(pubsub)

    assert len(local_wakes) == 201  # this process's relay is woken every time
    assert 1 <= burst <= 2  # one PUBLISH in flight, one more for the wakes it did not cover
    assert after == 1


async def test_wakes_during_a_publish_get_one_more_publish_after_it(redis: Redis) -> None:
    waker = RedisOutboxWakerImpl(redis, lambda: None)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(WAKE_CHANNEL)
        await pubsub.get_message(timeout=1)
        # Wakes before the publisher task first runs are covered by its one PUBLISH.
        await waker.wake()
        await waker.wake()
        await waker.drain()
        assert await _messages_until_quiet(pubsub) == 1
        # A wake while that PUBLISH waits for Redis's reply gets one more after it.
        await waker.wake()
        await asyncio.sleep(0)  # the publisher task starts and sends its PUBLISH
        await waker.wake()
        await waker.wake()
        await waker.drain()
        assert await _messages_until_quiet(pubsub) == 2


async def test_a_minimum_interval_spaces_publishes_and_still_follows_the_last_wake(
    redis: Redis,
) -> None:
    interval = 0.05
    waker = RedisOutboxWakerImpl(redis, lambda: None, min_interval=interval)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(WAKE_CHANNEL)
        await pubsub.get_message(timeout=1)

        async def receive() -> None:  # timestamps each PUBLISH as it arrives
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.005)
                if message is not None:
                    arrivals.append(loop.time())

        receiver = asyncio.create_task(receive())
        started = loop.time()
        last_wake = started
        for _ in range(40):  # a commit every 10 ms for 0.4 s
            await waker.wake()
            last_wake = loop.time()
            await asyncio.sleep(0.01)
        await waker.drain()
        await asyncio.sleep(0.3)
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)

    # At most one PUBLISH per interval (plus the first), not one per commit...
    assert 2 <= len(arrivals) <= (last_wake - started) / interval + 2, arrivals
    # ...and the last commit is still followed by one, within the interval (and a round trip).
    assert last_wake < arrivals[-1] <= last_wake + interval + 0.1, (last_wake, arrivals)


async def test_listen_for_wakes_forwards_publishes_to_the_local_relay(
    redis: Redis, redis_url: str
) -> None:
    woken = asyncio.Event()
    listener = asyncio.create_task(listen_for_wakes(redis_url, woken.set, retry_seconds=0.1))
    try:
        waker = RedisOutboxWakerImpl(redis, lambda: None)
        async with asyncio.timeout(10):
            while not woken.is_set():  # the listener subscribes in the background
                await waker.wake()
                await asyncio.sleep(0.05)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert woken.is_set()


async def test_listen_for_wakes_ends_when_asked_to_stop_without_a_cancellation(
    redis_url: str,
) -> None:
    # Shutdown's fallback for a cancellation that redis-py swallowed while connecting.
    stop = asyncio.Event()
    listener = asyncio.create_task(listen_for_wakes(redis_url, lambda: None, 0.1, stop=stop))
    await asyncio.sleep(0.5)  # connected and subscribed, waiting for messages
    stop.set()
    await asyncio.wait_for(listener, timeout=3)
    assert listener.done() and listener.exception() is None
