"""Optimistic concurrency under real parallel requests to the served app, events on the broker."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from services.class_management_service.tests.reliability.conftest import ServedCms
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    problem_of,
    user_headers,
)
from services.class_management_service.tests.support.kafka_events import (
    ConsumedEvent,
    collect_events,
    order_problems,
)

pytestmark = pytest.mark.timeout(120)

RACERS = 20


@pytest.fixture
async def client(served_cms: ServedCms) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=RACERS)
    async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=30, limits=limits) as c:
        yield c


async def events_of(
    served_cms: ServedCms, aggregate_id: str, count: int, timeout: float
) -> list[ConsumedEvent]:
    """At least ``count`` events of one class or student on the broker (and any duplicates)."""
    return await collect_events(
        served_cms.kafka_bootstrap,
        lambda e: str(e.envelope.data.aggregate_id) == aggregate_id,
        count=count,
        timeout=timeout,
    )


async def race(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    json_of: Callable[[int], object] | None = None,
    **kwargs: object,
) -> Counter:
    """RACERS requests at once; ``json_of(index)`` is racer ``index``'s body, if given."""
    start = asyncio.Event()

    async def one(index: int) -> httpx.Response:
        await start.wait()
        body = {"json": json_of(index)} if json_of is not None else {}
        return await client.request(method, path, **body, **kwargs)  # type: ignore[arg-type]

    tasks = [asyncio.create_task(one(i)) for i in range(RACERS)]
    await asyncio.sleep(0.05)
    start.set()
    responses = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    for response in responses:
        if response.status_code >= 400:
            await problem_of(response)
    return Counter(response.status_code for response in responses)


async def test_same_if_match_twenty_times_one_wins_one_event(
    client: httpx.AsyncClient, served_cms: ServedCms
) -> None:
    owner = f"racer-{uuid.uuid4().hex[:8]}"
    record = await create_class(client, owner)
    outcome = await race(
        client,
        "PUT",
        f"/v1/classes/{record['id']}",
        json={"name": "winner"},
        headers=user_headers(owner, **{"If-Match": '"1"'}),
    )
    assert outcome == {200: 1, 412: RACERS - 1}
    final = (await client.get(f"/v1/classes/{record['id']}", headers=user_headers(owner))).json()
    assert final["version"] == 2

    events = await events_of(served_cms, record["id"], count=2, timeout=15)
    assert Counter(e.topic for e in events) == {
        "huleedu.class.created.v1": 1,
        "huleedu.class.updated.v1": 1,
    }


async def test_same_if_match_on_a_student_one_wins_one_event(
    client: httpx.AsyncClient, served_cms: ServedCms
) -> None:
    owner = f"racer-{uuid.uuid4().hex[:8]}"
    student = await create_student(client, owner)
    outcome = await race(
        client,
        "PUT",
        f"/v1/classes/students/{student['id']}",
        json={"person_name": {"first_name": "Won", "last_name": "Once"}},
        headers=user_headers(owner, **{"If-Match": '"1"'}),
    )
    assert outcome == {200: 1, 412: RACERS - 1}
    events = await events_of(served_cms, student["id"], count=2, timeout=15)
    assert sorted(e.envelope.data.version for e in events) == [1, 2]


async def test_concurrent_deletes_with_if_match_delete_once(
    client: httpx.AsyncClient, served_cms: ServedCms
) -> None:
    owner = f"racer-{uuid.uuid4().hex[:8]}"
    record = await create_class(client, owner)
    outcome = await race(
        client,
        "DELETE",
        f"/v1/classes/{record['id']}",
        headers=user_headers(owner, **{"If-Match": '"1"'}),
    )
    # The losers waited for the winner's row lock and then found the class gone.
    assert outcome[204] == 1 and outcome[204] + outcome[404] + outcome[412] == RACERS, outcome
    events = await events_of(served_cms, record["id"], count=2, timeout=15)
    assert Counter(e.topic for e in events) == {
        "huleedu.class.created.v1": 1,
        "huleedu.class.deleted.v1": 1,
    }


@pytest.mark.parametrize("kind", ["class", "student"])
async def test_unconditional_concurrent_updates_are_serialised_not_lost(
    client: httpx.AsyncClient, served_cms: ServedCms, kind: str
) -> None:
    """Without If-Match every update wins, one after the other: versions 2..21, each once,
    each with its own event, in order. Each writer sends its own value (the same one again
    would change nothing: a no-op, no version, no event)."""
    owner = f"racer-{uuid.uuid4().hex[:8]}"
    json_of: Callable[[int], object]
    if kind == "class":
        record = await create_class(client, owner)
        path = f"/v1/classes/{record['id']}"

        def json_of(index: int) -> object:
            return {"name": f"x{index}"}
    else:
        record = await create_student(client, owner)
        path = f"/v1/classes/students/{record['id']}"

        def json_of(index: int) -> object:
            return {"person_name": {"first_name": f"Ada{index}", "last_name": "Racer"}}

    outcome = await race(client, "PUT", path, json_of, headers=user_headers(owner))
    assert outcome == {200: RACERS}
    final = (await client.get(path, headers=user_headers(owner))).json()
    assert final["version"] == RACERS + 1
    events = await events_of(served_cms, record["id"], count=RACERS + 1, timeout=20)
    assert sorted(e.envelope.data.version for e in events) == list(range(1, RACERS + 2))
    assert order_problems(events) == []


async def test_concurrent_unconditional_deletes_of_a_student_delete_once(
    client: httpx.AsyncClient, served_cms: ServedCms
) -> None:
    owner = f"racer-{uuid.uuid4().hex[:8]}"
    student = await create_student(client, owner)
    outcome = await race(
        client, "DELETE", f"/v1/classes/students/{student['id']}", headers=user_headers(owner)
    )
    assert outcome == {204: 1, 404: RACERS - 1}, outcome
    events = await events_of(served_cms, student["id"], count=2, timeout=15)
    assert Counter(e.topic for e in events) == {
        "huleedu.class.student.created.v1": 1,
        "huleedu.class.student.deleted.v1": 1,
    }
    assert sorted(e.envelope.data.version for e in events) == [1, 2]
