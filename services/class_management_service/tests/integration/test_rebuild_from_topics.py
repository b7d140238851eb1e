"""A consumer can rebuild the truth from the broker (issue 14, "Done when").

Hypothesis runs random sequences of operations through the real app on the real stack,
some of them concurrent (creates, renames, membership changes, class and student deletes,
essay links, writes that change nothing). Once the relay has published everything, the
state is rebuilt in two ways: (a) from the change topics, read in a shuffled order with
duplicates, keeping the highest version per aggregate (a deletion as a tombstone); (b) from
the state topics alone (per key, the last record; a null value a tombstone). Both must
equal what the REST API shows for every aggregate, and every version from 1 to the last
must appear exactly once per aggregate.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from typing import Any

import pytest
from common_core.events import (
    CHANGE_TOPICS,
    CLASS_DELETED_TOPIC,
    ESSAY_LINKED_TOPIC,
    STATE_TOPICS,
    STUDENT_DELETED_TOPIC,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from quart.testing.app import TestApp as RunningApp  # not "Test*": pytest would collect it
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.tests.support.api import state_in_event_terms
from services.class_management_service.tests.support.kafka_events import read_to_end
from services.class_management_service.tests.support.polling import wait_until

# One step: an operation on the n-th class / student made so far (modulo how many there are).
_ref = st.integers(min_value=0, max_value=5)
_step = st.one_of(
    st.tuples(st.just("create_class"), st.sampled_from(["9A", "9B"])),
    st.tuples(st.just("create_student"), st.lists(_ref, max_size=2)),
    st.tuples(st.just("rename_class"), _ref, st.sampled_from(["9A", "9B"])),
    st.tuples(st.just("rename_student"), _ref, st.sampled_from(["Lind", "Berg"])),
    st.tuples(st.just("email"), _ref, st.sampled_from([None, "a@example.com", "b@example.com"])),
    st.tuples(st.just("move"), _ref, st.lists(_ref, max_size=2), st.lists(_ref, max_size=2)),
    st.tuples(st.just("delete_class"), _ref),
    st.tuples(st.just("delete_student"), _ref),
    st.tuples(st.just("link"), _ref, st.integers(min_value=0, max_value=2)),
)
# A program: steps run one after another, or a few at once.
_program = st.lists(
    st.one_of(_step.map(lambda step: [step]), st.lists(_step, min_size=2, max_size=4)),
    min_size=3,
    max_size=8,
)


class World:
    """The ids an example made, and how to run one step through the API."""

    def __init__(self, client: Any, user_id: str) -> None:
        self.client = client
        self.headers = {"X-User-ID": user_id}
        self.classes: list[str] = []
        self.students: list[str] = []
        self.essays = [str(uuid.uuid4()) for _ in range(3)]

    def _pick(self, ids: list[str], n: int) -> str | None:
        return ids[n % len(ids)] if ids else None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        extra = {"json": body} if body is not None else {}
        response = await self.client.open(path, method=method, headers=self.headers, **extra)
        # A step may name what another step deleted, or an e-mail in use: 404 / 409.
        assert response.status_code in (200, 201, 204, 404, 409), (
            method,
            path,
            body,
            response.status_code,
            await response.get_data(as_text=True),
        )
        return await response.get_json() if response.status_code in (200, 201) else None

    async def run(self, step: tuple[Any, ...]) -> None:
        kind, *args = step
        if kind == "create_class":
            body = {"name": args[0], "course_codes": ["ENG5"]}
            created = await self._call("POST", "/v1/classes", body)
            self.classes.append(created["id"])
        elif kind == "create_student":
            class_ids = sorted({c for n in args[0] if (c := self._pick(self.classes, n))})
            body = {
                "person_name": {"first_name": "Ada", "last_name": "Berg"},
                "class_ids": class_ids,
            }
            created = await self._call("POST", "/v1/classes/students", body)
            if created:
                self.students.append(created["id"])
        elif kind == "rename_class" and (class_id := self._pick(self.classes, args[0])):
            await self._call("PUT", f"/v1/classes/{class_id}", {"name": args[1]})
        elif kind in ("rename_student", "email", "move", "delete_student", "link") and (
            student_id := self._pick(self.students, args[0])
        ):
            path = f"/v1/classes/students/{student_id}"
            if kind == "rename_student":
                await self._call("PUT", path, {"person_name": {"last_name": args[1]}})
            elif kind == "email":
                await self._call("PUT", path, {"email": args[1]})
            elif kind == "move":
                add, remove = ([self._pick(self.classes, n) for n in refs] for refs in args[1:])
                body = {
                    "add_class_ids": sorted({c for c in add if c}),
                    "remove_class_ids": sorted({c for c in remove if c}),
                }
                body["add_class_ids"] = [
                    c for c in body["add_class_ids"] if c not in body["remove_class_ids"]
                ]
                await self._call("PUT", path, body)
            elif kind == "delete_student":
                await self._call("DELETE", path)
            else:
                await self._call("PUT", f"{path}/essays/{self.essays[args[1]]}")
        elif kind == "delete_class" and (class_id := self._pick(self.classes, args[0])):
            await self._call("DELETE", f"/v1/classes/{class_id}")

    async def api_state(self) -> dict[str, Any]:
        """Every aggregate as the API shows it (None: deleted), in the events' terms."""
        return await state_in_event_terms(self.client, self.headers, self.classes, self.students)

    async def api_essays(self) -> dict[str, str]:
        """Each linked essay's student, of the students still there."""
        links: dict[str, str] = {}
        for student_id in self.students:
            body = await self._call("GET", f"/v1/classes/students/{student_id}/essays")
            for link in (body or {}).get("essays", []):
                links[link["essay_id"]] = student_id
        return links


def _comparable(data: dict[str, Any] | None, like: dict[str, Any] | None) -> Any:
    """An event's data restricted to the fields the API state names."""
    if data is None or like is None:
        return data
    return {name: data[name] for name in like}


async def _run_example(settings: Settings, bootstrap: str, program: list[list[Any]]) -> None:
    app = create_app(settings)
    async with RunningApp(app, startup_timeout=30, shutdown_timeout=30):
        world = World(app.test_client(), f"teacher-{uuid.uuid4().hex[:8]}")
        for group in program:
            await asyncio.gather(*(world.run(step) for step in group))
        expected = await world.api_state()
        essays = await world.api_essays()
        engine = create_async_engine(settings.DATABASE_URL)
        try:

            async def outbox_empty() -> bool:
                async with engine.connect() as connection:
                    return not await connection.scalar(text("SELECT count(*) FROM event_outbox"))

            await wait_until(outbox_empty, timeout=60)
        finally:
            await engine.dispose()

    ours = {key.encode() for key in expected}
    changes = [e for e in await read_to_end(bootstrap, CHANGE_TOPICS) if e.key in ours]
    states = [e for e in await read_to_end(bootstrap, STATE_TOPICS) if e.key in ours]

    # Every version from 1 to the last exactly once per aggregate (a redelivered copy
    # has its event id: the same event).
    versions: dict[bytes, dict[int, set[uuid.UUID]]] = defaultdict(lambda: defaultdict(set))
    for event in changes:
        versions[event.key][event.envelope.data.version].add(event.envelope.event_id)
    for key, seen in versions.items():
        assert sorted(seen) == list(range(1, max(seen) + 1)), (key, sorted(seen))
        assert all(len(ids) == 1 for ids in seen.values()), (key, seen)

    # (a) The change topics, shuffled, with duplicates: the highest version wins.
    shuffled = changes + random.sample(changes, len(changes) // 2)
    random.shuffle(shuffled)
    latest: dict[str, tuple[int, Any]] = {}
    for event in shuffled:
        data = event.envelope.data
        key = event.key.decode()
        if key not in latest or data.version > latest[key][0]:
            gone = event.topic in (CLASS_DELETED_TOPIC, STUDENT_DELETED_TOPIC)
            latest[key] = (data.version, None if gone else data.model_dump(mode="json"))
    from_changes = {key: _comparable(latest[key][1], expected[key]) for key in expected}

    # (b) The state topics alone: per key, its last record (one key, one partition).
    last: dict[str, Any] = {}
    for record in sorted(states, key=lambda e: e.offset):
        envelope = record.envelope
        last[record.key.decode()] = envelope and envelope.data.model_dump(mode="json")
    from_states = {key: _comparable(last[key], expected[key]) for key in expected}

    assert from_changes == expected
    assert from_states == expected

    # Essay links: each first link announced once, naming its student.
    linked = [
        e
        for e in await read_to_end(bootstrap, [ESSAY_LINKED_TOPIC])
        if e.key in {k.encode() for k in world.essays}
    ]
    announced = {e.key.decode(): str(e.envelope.data.student_id) for e in linked}
    assert len({e.envelope.event_id for e in linked}) == len(announced)
    assert {
        essay: student for essay, student in announced.items() if expected.get(student)
    } == essays


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_state_rebuilt_from_the_topics_equals_the_api(
    settings: Settings, kafka_bootstrap: str
) -> None:
    @hypothesis_settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(program=_program)
    def example(program: list[list[Any]]) -> None:
        asyncio.run(_run_example(settings, kafka_bootstrap, program))

    example()
