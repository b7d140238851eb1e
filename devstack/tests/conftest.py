"""Helpers for the devstack tests: bounded probes of the three services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Probes:
    """Each probe fails (raises) within ``timeout`` seconds when the service is not there."""

    timeout: float = 10.0

    async def postgres(self, url: str) -> int:
        import asyncpg

        conn = await asyncpg.connect(url, timeout=self.timeout)
        try:
            value = await conn.fetchval("SELECT 1", timeout=self.timeout)
        finally:
            await conn.close(timeout=self.timeout)
        return int(value)

    def redis(self, url: str) -> bool:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        try:
            return bool(client.ping())
        finally:
            client.close()

    async def kafka_topics(self, bootstrap: str) -> set[str]:
        """A metadata round trip with aiokafka; returns the broker's topics."""
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            request_timeout_ms=int(self.timeout * 1000),
            connections_max_idle_ms=60_000,
        )
        async with asyncio.timeout(self.timeout * 2):
            await consumer.start()
            try:
                return set(await consumer.topics())
            finally:
                await consumer.stop()


@pytest.fixture(scope="session")
def probes() -> Probes:
    return Probes()
