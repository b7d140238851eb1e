"""Idempotency-Key on POST, through the real app and a real Redis (or none reachable)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from huleedu_devstack import free_port
from quart.testing.app import TestApp as LifespanOf
from quart.typing import TestClientProtocol as Client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.models_db import UserClass
from services.class_management_service.tests.support.api import problem_of
from services.class_management_service.tests.support.database import outbox_count

pytestmark = pytest.mark.relay_off  # counts the outbox rows requests wrote


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        classes = await connection.scalar(select(func.count()).select_from(UserClass))
    return int(classes or 0), await outbox_count(engine)  # the change events


async def test_same_key_and_body_replays_the_first_response(client, headers, engine) -> None:
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"name": "9A", "course_codes": ["ENG5"]}

    first = await client.post("/v1/classes", json=body, headers=keyed)
    second = await client.post("/v1/classes", json=body, headers=keyed)

    assert first.status_code == second.status_code == 201
    assert await first.get_json() == await second.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await _counts(engine) == (1, 1)


async def test_same_key_with_another_body_is_422(client, headers, engine) -> None:
    keyed = {**headers, "Idempotency-Key": "k-1"}
    await client.post("/v1/classes", json={"name": "9A", "course_codes": ["ENG5"]}, headers=keyed)
    other = await client.post(
        "/v1/classes", json={"name": "9B", "course_codes": ["ENG5"]}, headers=keyed
    )
    assert other.status_code == 422
    assert (await other.get_json())["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await _counts(engine) == (1, 1)


async def test_keys_are_per_user_and_failed_requests_can_be_retried(
    client, headers, engine
) -> None:
    key = "shared-key"
    body = {"name": "9A", "course_codes": ["ENG5"]}
    bad = await client.post(
        "/v1/classes",
        json={"name": "9A", "course_codes": ["NOPE"]},
        headers={**headers, "Idempotency-Key": "retry-me"},
    )
    assert bad.status_code == 400
    retried = await client.post(
        "/v1/classes", json=body, headers={**headers, "Idempotency-Key": "retry-me"}
    )
    assert retried.status_code == 201

    mine = await client.post("/v1/classes", json=body, headers={**headers, "Idempotency-Key": key})
    theirs = await client.post(
        "/v1/classes", json=body, headers={"X-User-ID": "someone-else", "Idempotency-Key": key}
    )
    assert mine.status_code == theirs.status_code == 201
    assert (await mine.get_json())["id"] != (await theirs.get_json())["id"]
    assert await _counts(engine) == (3, 3)


async def test_student_post_is_idempotent_too(client, headers) -> None:
    keyed = {**headers, "Idempotency-Key": "student-1"}
    body = {"person_name": {"first_name": "Ada", "last_name": "Lovelace"}, "email": "a@b.se"}
    first = await client.post("/v1/classes/students", json=body, headers=keyed)
    second = await client.post("/v1/classes/students", json=body, headers=keyed)
    assert first.status_code == second.status_code == 201
    assert (await first.get_json())["id"] == (await second.get_json())["id"]
    listed = await client.get("/v1/classes/students", headers=headers)
    assert (await listed.get_json())["pagination"]["total"] == 1


async def test_the_same_json_reserialised_is_the_same_request(client, headers, engine) -> None:
    """Key order and whitespace are not the request: the parsed JSON is."""
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
    first = await client.post(
        "/v1/classes", data='{"name": "9A", "course_codes": ["ENG5"]}', headers=keyed
    )
    second = await client.post(
        "/v1/classes", data='{\n  "course_codes" : [ "ENG5" ],\n\t"name":"9A"\n}', headers=keyed
    )
    assert first.status_code == second.status_code == 201
    assert await first.get_json() == await second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other_order = await client.post(
        "/v1/classes", data='{"name": "9A", "course_codes": ["ENG5", "ENG5"]}', headers=keyed
    )
    assert other_order.status_code == 422  # array order and length are the request's own
    assert await _counts(engine) == (1, 1)


@pytest.fixture
async def client_without_redis(settings: Settings) -> AsyncIterator[Client]:
    """The app with its Redis unreachable (nothing listens on the port)."""
    unreachable = Settings(
        **{**settings.model_dump(), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    app = create_app(unreachable)
    async with LifespanOf(app, startup_timeout=30, shutdown_timeout=30):
        yield app.test_client()


async def test_a_keyed_request_is_refused_while_the_key_store_is_unreachable(
    client_without_redis, headers, engine
) -> None:
    body = {"name": "9A", "course_codes": ["ENG5"]}
    for path, payload in [
        ("/v1/classes", body),
        ("/v1/classes/students", {"person_name": {"first_name": "Ada", "last_name": "L"}}),
    ]:
        keyed = {**headers, "Idempotency-Key": "during-outage"}
        refused = await client_without_redis.post(path, json=payload, headers=keyed)
        await problem_of(refused, 503, "IDEMPOTENCY_UNAVAILABLE")
        assert int(refused.headers["Retry-After"]) > 0
    assert await _counts(engine) == (0, 0)
    served = await client_without_redis.post("/v1/classes", json=body, headers=headers)
    assert served.status_code == 201  # without a key: served as ever
    assert await _counts(engine) == (1, 1)
