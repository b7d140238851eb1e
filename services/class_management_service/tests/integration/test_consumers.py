"""What a consumer team does with the events, against the real broker.

The README's consumer (the block after ``<!-- consumer example -->``) runs as written, in a
consumer group, and its view equals what the API shows: bootstrapped from the state topics
and followed on the change topics, and from the change topics alone. ``publish-state``
(the command) writes every live aggregate's state for a consumer that starts after the
broker lost its data.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from common_core.events import STATE_TOPICS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.config import ENV_PREFIX
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    reply_of,
    send,
    state_in_event_terms,
)
from services.class_management_service.tests.support.database import pending_outbox
from services.class_management_service.tests.support.kafka_events import read_to_end
from services.class_management_service.tests.support.polling import wait_until
from services.class_management_service.tests.support.service_process import (
    REPO_ROOT,
    ServiceProcess,
    service_env,
)

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

pytestmark = pytest.mark.timeout(240)

README = REPO_ROOT / "services" / "class_management_service" / "README.md"
MARKER = "<!-- consumer example -->"


def readme_consumer() -> dict[str, Any]:
    """The README's consumer block, executed: its module namespace."""
    after = README.read_text(encoding="utf-8").split(MARKER, 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "readme_consumer"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


async def _history(client: TestClientProtocol, headers: dict[str, str]) -> tuple[list, list]:
    """Creates, renames, membership changes, deletes and a no-op: the class and student ids."""
    class_a = (await create_class(client, headers, "9A"))["id"]
    class_b = (await create_class(client, headers, "9B"))["id"]
    class_c = (await create_class(client, headers, "9C"))["id"]
    ada = await create_student(client, headers, "Ada", "Berg", "ada@example.com", [class_a])
    eva = await create_student(client, headers, "Eva", "Lind", class_ids=[class_a, class_b])
    ola = await create_student(client, headers, "Ola", "Ek", class_ids=[class_c])
    writes = [
        ("PUT", f"/v1/classes/{class_a}", {"name": "9A Engelska"}),
        ("PUT", f"/v1/classes/{class_a}", {"name": "9A Engelska"}),  # changes nothing
        ("PUT", f"/v1/classes/students/{ada['id']}", {"add_class_ids": [class_b]}),
        ("PUT", f"/v1/classes/students/{ada['id']}", {"email": None}),
        ("PUT", f"/v1/classes/students/{eva['id']}", {"person_name": {"last_name": "Öberg"}}),
        ("PUT", f"/v1/classes/students/{eva['id']}", {"remove_class_ids": [class_a]}),
        ("DELETE", f"/v1/classes/{class_b}", None),
        ("DELETE", f"/v1/classes/students/{ola['id']}", None),
    ]
    for method, path, body in writes:
        reply = await reply_of(await send(client, method, path, headers, body=body))
        assert reply.status == (204 if method == "DELETE" else 200), (path, reply.text)
    return [class_a, class_b, class_c], [ada["id"], eva["id"], ola["id"]]


def _shown(view: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The view of the expected aggregates, restricted to the fields the API state names."""
    shown: dict[str, Any] = {}
    for key, like in expected.items():
        if key not in view:
            shown[key] = "not seen"
            continue
        _, state = view[key]
        shown[key] = state if state is None or like is None else {n: state[n] for n in like}
    return shown


async def test_the_readme_consumer_ends_with_what_the_api_shows(
    client: TestClientProtocol, headers: dict[str, str], kafka_bootstrap: str, engine: AsyncEngine
) -> None:
    class_ids, student_ids = await _history(client, headers)
    expected = await state_in_event_terms(client, headers, class_ids, student_ids)
    deleted = [expected[key] is None for key in class_ids + student_ids]
    assert deleted == [False, True, False, False, False, True]

    async def published() -> bool:
        return await pending_outbox(engine) == 0

    await wait_until(published, timeout=60)

    consumer = readme_consumer()
    bootstrapped: dict[str, Any] = {}  # state topics, then the change topics (the default)
    changes_only: dict[str, Any] = {}
    consume = consumer["consume"]
    tasks = [
        asyncio.create_task(consume(kafka_bootstrap, f"readme-{uuid.uuid4()}", bootstrapped)),
        asyncio.create_task(
            consume(kafka_bootstrap, f"readme-{uuid.uuid4()}", changes_only, consumer["CHANGES"])
        ),
    ]
    try:

        async def caught_up() -> bool:
            for task in tasks:
                if task.done():
                    task.result()  # a consumer that stopped raises here
            return _shown(bootstrapped, expected) == expected == _shown(changes_only, expected)

        await wait_until(caught_up, timeout=120, interval=0.5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Deleted aggregates are tombstones, whatever their last version was.
    assert bootstrapped[class_ids[1]] == changes_only[class_ids[1]] == (math.inf, None)


@pytest.mark.relay_off
async def test_publish_state_writes_every_live_aggregate_for_a_late_consumer(
    client: TestClientProtocol,
    headers: dict[str, str],
    database_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    class_ids, student_ids = await _history(client, headers)
    expected = await state_in_event_terms(client, headers, class_ids, student_ids)
    # The broker lost everything: nothing of this history was ever delivered.
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM event_outbox"))

    env = service_env(database_url, redis_url, kafka_bootstrap)
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.class_management_service", "publish-state"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    live = [key for key, state in expected.items() if state is not None]
    assert run.stdout == f"wrote the state of {len(live)} classes and students to the outbox\n"
    assert await pending_outbox(engine) == len(live)  # one state record per live aggregate

    with ServiceProcess(env, tmp_path / "relay.log", name="relay", command="relay") as relay:
        relay.wait_healthy()

        async def published() -> bool:
            return await pending_outbox(engine) == 0

        await wait_until(published, timeout=60)

    ours = {key.encode() for key in expected}
    records = [r for r in await read_to_end(kafka_bootstrap, STATE_TOPICS) if r.key in ours]
    assert sorted(r.key.decode() for r in records) == sorted(live)  # once each, no tombstones
    from_states = {
        r.key.decode(): (r.envelope.data.version, r.envelope.data.model_dump(mode="json"))
        for r in records
    }
    assert _shown(from_states, {key: expected[key] for key in live}) == {
        key: expected[key] for key in live
    }
