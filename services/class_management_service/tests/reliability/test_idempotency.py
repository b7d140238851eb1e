"""Idempotency-Key on POST (api/idempotency.py), against the served app and the real Redis.

The same key and body within 24 h returns the first response and creates nothing new;
another body under the same key is 422. Keys belong to their user, are shared by every
replica (they live in Redis), and a request that failed leaves its key free for a retry.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.implementations.redis_idempotency_store_impl import (
    RedisIdempotencyStoreImpl,
)
from services.class_management_service.tests.reliability.conftest import ServedCms
from services.class_management_service.tests.support.api import (
    problem_of,
    user_headers,
)
from services.class_management_service.tests.support.kafka_events import (
    by_user,
    collect_events,
)
from services.class_management_service.tests.support.service_process import (
    ServiceProcess,
    service_env,
)

pytestmark = pytest.mark.timeout(120)

CLASSES = "/v1/classes"
STUDENTS = "/v1/classes/students"
DAY = 86_400


@pytest.fixture
async def client(served_cms: ServedCms) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=15) as client:
        yield client


@pytest.fixture
def owner() -> str:
    return f"idem-{uuid.uuid4().hex[:8]}"


async def rows_of(engine: AsyncEngine, owner: str, bootstrap: str) -> tuple[int, int, int]:
    """(classes, students, events) of ``owner``: rows in the database, events on the broker
    (the relay deletes an outbox row once published). Every row has its created event: the
    count waits for those, then for a second more, so that an extra event shows too."""
    async with engine.connect() as connection:
        classes = await connection.scalar(
            text("SELECT count(*) FROM classes WHERE created_by_user_id = :o"), {"o": owner}
        )
        students = await connection.scalar(
            text("SELECT count(*) FROM students WHERE created_by_user_id = :o"), {"o": owner}
        )
    created = int(classes or 0) + int(students or 0)
    events = await collect_events(bootstrap, by_user(owner), created, timeout=60)
    return int(classes or 0), int(students or 0), len(events)


def keyed(owner: str, key: str) -> dict[str, str]:
    return user_headers(owner, **{"Idempotency-Key": key})


async def test_same_key_and_body_replays_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, served_cms: ServedCms, served_engine: AsyncEngine, owner: str
) -> None:
    key = str(uuid.uuid4())
    body = json.dumps({"name": "9A", "course_codes": ["ENG5"]})
    headers = {**keyed(owner, key), "Content-Type": "application/json"}

    first = await client.post(CLASSES, content=body, headers=headers)
    again = [await client.post(CLASSES, content=body, headers=headers) for _ in range(3)]

    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    for replay in again:
        assert replay.status_code == 201
        assert replay.json() == first.json()
        assert replay.headers["Location"] == first.headers["Location"]
        assert replay.headers["ETag"] == first.headers["ETag"]
        assert replay.headers["Idempotent-Replayed"] == "true"
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (1, 0, 1)
    events = await collect_events(served_cms.kafka_bootstrap, by_user(owner), 1, 60)
    assert len(events) == 1  # one change, one event


async def test_same_key_with_another_body_is_422_and_creates_nothing(
    client: httpx.AsyncClient, served_cms: ServedCms, served_engine: AsyncEngine, owner: str
) -> None:
    key = str(uuid.uuid4())
    first = await client.post(
        CLASSES, json={"name": "9A", "course_codes": ["ENG5"]}, headers=keyed(owner, key)
    )
    assert first.status_code == 201
    for other in (
        {"name": "9B", "course_codes": ["ENG5"]},
        {"name": "9A", "course_codes": ["SV1"]},
    ):
        response = await client.post(CLASSES, json=other, headers=keyed(owner, key))
        assert (await problem_of(response, 422))["code"] == "IDEMPOTENCY_KEY_REUSED"
    # The same key on another route is another request, too.
    response = await client.post(
        STUDENTS,
        json={"person_name": {"first_name": "A", "last_name": "B"}},
        headers=keyed(owner, key),
    )
    assert (await problem_of(response, 422))["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (1, 0, 1)


async def test_concurrent_retries_with_one_key_create_one_class(
    client: httpx.AsyncClient, served_cms: ServedCms, served_engine: AsyncEngine, owner: str
) -> None:
    key = str(uuid.uuid4())
    body = {"name": "raced", "course_codes": ["ENG5"]}
    responses = await asyncio.gather(
        *(client.post(CLASSES, json=body, headers=keyed(owner, key)) for _ in range(10))
    )
    statuses = Counter(response.status_code for response in responses)
    # 409 while the first request is still running; the first response for all others.
    assert set(statuses) <= {201, 409}, statuses
    for response in responses:
        if response.status_code == 409:
            assert (await problem_of(response))["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (1, 0, 1)
    late = await client.post(CLASSES, json=body, headers=keyed(owner, key))
    assert late.status_code == 201 and late.headers["Idempotent-Replayed"] == "true"


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, served_cms: ServedCms, served_engine: AsyncEngine, owner: str
) -> None:
    other = f"idem-{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    body = {"name": "9A", "course_codes": ["ENG5"]}
    mine = await client.post(CLASSES, json=body, headers=keyed(owner, key))
    theirs = await client.post(CLASSES, json=body, headers=keyed(other, key))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (1, 0, 1)
    assert await rows_of(served_engine, other, served_cms.kafka_bootstrap) == (1, 0, 1)


async def test_a_failed_request_leaves_the_key_free_for_a_retry(
    client: httpx.AsyncClient, served_cms: ServedCms, served_engine: AsyncEngine, owner: str
) -> None:
    key = str(uuid.uuid4())
    bad = await client.post(
        CLASSES, json={"name": "9A", "course_codes": ["NOPE"]}, headers=keyed(owner, key)
    )
    assert (await problem_of(bad, 400))["code"] == "COURSE_NOT_FOUND"
    invalid = await client.post(CLASSES, json={"name": ""}, headers=keyed(owner, key))
    assert (await problem_of(invalid, 400))["code"] == "VALIDATION_ERROR"
    fixed = await client.post(
        CLASSES, json={"name": "9A", "course_codes": ["ENG5"]}, headers=keyed(owner, key)
    )
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (1, 0, 1)


async def test_student_creation_is_idempotent_and_the_key_lives_24_hours(
    client: httpx.AsyncClient, served_cms: ServedCms, served_engine: AsyncEngine, owner: str
) -> None:
    key = f"student-{uuid.uuid4().hex[:8]}"
    body = {"person_name": {"first_name": "Ada", "last_name": "L"}, "email": "ada@example.org"}
    first = await client.post(STUDENTS, json=body, headers=keyed(owner, key))
    second = await client.post(STUDENTS, json=body, headers=keyed(owner, key))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (0, 1, 1)

    redis = Redis.from_url(served_cms.redis_url, socket_timeout=5)
    try:
        ttl = await redis.ttl(RedisIdempotencyStoreImpl.redis_key(owner, key))
    finally:
        await redis.aclose()
    assert DAY - 120 <= ttl <= DAY, ttl


async def test_another_replica_replays_the_first_response(
    client: httpx.AsyncClient,
    served_cms: ServedCms,
    served_engine: AsyncEngine,
    owner: str,
    tmp_path: Path,
) -> None:
    """Keys live in Redis, not in a process: a retry that lands on another replica (or on
    this one after a restart) gets the first response too."""
    key = str(uuid.uuid4())
    body = {"name": "9A", "course_codes": ["ENG5"]}
    first = await client.post(CLASSES, json=body, headers=keyed(owner, key))
    assert first.status_code == 201
    env = service_env(served_cms.database_url, served_cms.redis_url, served_cms.kafka_bootstrap)
    with ServiceProcess(env, tmp_path / "replica.log", name="replica") as replica:
        async with httpx.AsyncClient(base_url=replica.base_url, timeout=15) as other:
            replay = await other.post(CLASSES, json=body, headers=keyed(owner, key))
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert await rows_of(served_engine, owner, served_cms.kafka_bootstrap) == (1, 0, 1)
