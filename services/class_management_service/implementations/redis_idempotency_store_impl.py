"""Idempotency records in Redis: the first response to a key is replayed for 24 h."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.class_management_service import metrics
from services.class_management_service.domain import (
    Claimed,
    ClaimResult,
    InUse,
    Replay,
    StoredResponse,
    Unavailable,
)

KEY_PREFIX = "huleedu:class_management_service:idempotency:"
# How long a claimed key waits for its first request to finish before it may be retried.
CLAIM_SECONDS = 60


class RedisIdempotencyStoreImpl:
    """IdempotencyStoreProtocol on Redis: one JSON value per (user, key), pending while the
    first request runs (for CLAIM_SECONDS at most), then its response (for ``ttl_seconds``)."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    @staticmethod
    def redis_key(user_id: str, key: str) -> str:
        # Length-prefixed, then hashed: no (user, key) pair can spell another pair's key.
        digest = hashlib.sha256(f"{len(user_id)}:{user_id}{key}".encode()).hexdigest()
        return f"{KEY_PREFIX}{digest}"

    async def claim(self, user_id: str, key: str, fingerprint: str) -> ClaimResult:
        try:
            claimed = await self._redis.set(
                self.redis_key(user_id, key),
                json.dumps({"pending": fingerprint}),
                nx=True,
                ex=CLAIM_SECONDS,
            )
            if claimed:
                return Claimed()
            raw = await self._redis.get(self.redis_key(user_id, key))
        except (RedisError, OSError) as error:
            metrics.REDIS_ERRORS.labels("idempotency").inc()
            return Unavailable(str(error))
        if raw is None:  # expired between the two calls: try once more
            return await self.claim(user_id, key, fingerprint)
        stored = json.loads(raw)
        if "pending" in stored:
            return InUse(str(stored["pending"]))
        return Replay(StoredResponse(**stored))

    async def save(self, user_id: str, key: str, response: StoredResponse) -> None:
        try:
            await self._redis.set(
                self.redis_key(user_id, key), json.dumps(asdict(response)), ex=self._ttl
            )
        except (RedisError, OSError):
            metrics.REDIS_ERRORS.labels("idempotency").inc()

    async def release(self, user_id: str, key: str) -> None:
        try:
            await self._redis.delete(self.redis_key(user_id, key))
        except (RedisError, OSError):
            metrics.REDIS_ERRORS.labels("idempotency").inc()
