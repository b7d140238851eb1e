"""Idempotency records in Redis: the first response to a key is replayed for 24 h."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.class_management_service import metrics

KEY_PREFIX = "huleedu:class_management_service:idempotency:"
# How long a claimed key waits for its first request to finish before it may be retried.
CLAIM_SECONDS = 60


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int
    headers: dict[str, str]
    body: str


class IdempotencyUnavailableError(Exception):
    """Redis cannot be reached; the caller decides how to degrade."""


class RedisIdempotencyStoreImpl:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    @staticmethod
    def redis_key(user_id: str, key: str) -> str:
        # Length-prefixed, then hashed: no (user, key) pair can spell another pair's key.
        digest = hashlib.sha256(f"{len(user_id)}:{user_id}{key}".encode()).hexdigest()
        return f"{KEY_PREFIX}{digest}"

    async def claim(self, user_id: str, key: str, fingerprint: str) -> StoredResponse | str | None:
        """None if this request now owns the key; else the stored response, or
        the fingerprint of the request still in flight with this key."""
        try:
            claimed = await self._redis.set(
                self.redis_key(user_id, key),
                json.dumps({"pending": fingerprint}),
                nx=True,
                ex=CLAIM_SECONDS,
            )
            if claimed:
                return None
            raw = await self._redis.get(self.redis_key(user_id, key))
        except (RedisError, OSError) as error:
            metrics.REDIS_ERRORS.labels("idempotency").inc()
            raise IdempotencyUnavailableError(str(error)) from error
        if raw is None:  # expired between the two calls: try once more
            return await self.claim(user_id, key, fingerprint)
        stored = json.loads(raw)
        if "pending" in stored:
            return str(stored["pending"])
        return StoredResponse(**stored)

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
