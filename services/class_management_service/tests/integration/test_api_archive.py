"""Archiving a class through the real app on the real stack: ``status`` in every class body
and event, PUT archives and restores (version, ETag, If-Match, event), ``?status=`` filters
the list, and an archived class keeps its students, can be read and renamed, but gains
none."""

from __future__ import annotations

import uuid

from common_core.events import ClassUpdatedV1, topic_for
from quart.typing import TestClientProtocol as Client
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core import ClassStatus
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    etag,
    get_ok,
    json_of,
    problem_of,
    send,
    set_class_status,
    with_correlation,
)
from services.class_management_service.tests.support.database import database_digest
from services.class_management_service.tests.support.kafka_events import EventCollector


async def test_put_archives_and_restores_with_a_new_version_and_an_event(
    client: Client, headers: dict[str, str], events: EventCollector
) -> None:
    created = await create_class(client, headers)
    assert created["status"] == "active"
    path = f"/v1/classes/{created['id']}"

    stale = await send(
        client,
        "PUT",
        path,
        {**with_correlation(headers), "If-Match": etag(created["version"] + 1)},
        {"status": "archived"},
    )
    await problem_of(stale, 412, "PRECONDITION_FAILED")
    response = await send(
        client,
        "PUT",
        path,
        {**with_correlation(headers), "If-Match": etag(created["version"])},
        {"status": "archived"},
    )
    archived = await json_of(response, 200)
    assert (archived["status"], archived["version"]) == ("archived", created["version"] + 1)
    assert response.headers["ETag"] == etag(archived["version"])
    assert (await get_ok(client, path, headers))["status"] == "archived"
    again = await set_class_status(client, headers, created["id"], "archived")
    assert again["version"] == archived["version"]  # no change: no version, no event
    restored = await set_class_status(client, headers, created["id"], "active")
    assert (restored["status"], restored["version"]) == ("active", archived["version"] + 1)

    def of_class(event: object) -> bool:
        return getattr(event, "key", None) == created["id"].encode() and getattr(
            event, "topic", None
        ) == topic_for(ClassUpdatedV1)

    updates = sorted(
        (e.envelope.data for e in await events.wait_for(of_class, count=2)),
        key=lambda data: data.version,
    )
    assert [(u.version, u.status, u.previous.status) for u in updates] == [
        (archived["version"], ClassStatus.ARCHIVED, ClassStatus.ACTIVE),
        (restored["version"], ClassStatus.ACTIVE, ClassStatus.ARCHIVED),
    ]
    assert (
        events.matching(lambda e: of_class(e) and e.envelope.data.version > restored["version"])
        == []
    )


async def test_the_class_list_filters_by_status_and_shows_both_without_it(
    client: Client, headers: dict[str, str]
) -> None:
    active = await create_class(client, headers, "Active")
    archived = await create_class(client, headers, "Archived")
    await set_class_status(client, headers, archived["id"], "archived")

    def names(page: dict) -> list[str]:
        return sorted(item["name"] for item in page["classes"])

    assert names(await get_ok(client, "/v1/classes", headers)) == ["Active", "Archived"]
    only_active = await get_ok(client, "/v1/classes", headers, {"status": "active"})
    assert names(only_active) == ["Active"] and only_active["pagination"]["total"] == 1
    only_archived = await get_ok(
        client, "/v1/classes", headers, {"status": "archived", "q": "arch"}
    )
    assert names(only_archived) == ["Archived"]
    assert only_archived["classes"][0]["id"] == archived["id"] != active["id"]
    unknown = await send(client, "GET", "/v1/classes", headers, query={"status": "deleted"})
    problem = await problem_of(unknown, 400, "VALIDATION_ERROR")
    assert {error["loc"][0] for error in problem["errors"]} == {"status"}


async def test_an_archived_class_keeps_its_students_is_renamed_but_gains_none(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    klass = await create_class(client, headers, "9A")
    member = await create_student(client, headers, "Ada", "Lind", class_ids=[klass["id"]])
    other = await create_student(client, headers, "Bo", "Ek")
    await set_class_status(client, headers, klass["id"], "archived")
    path = f"/v1/classes/{klass['id']}"
    before = await database_digest(engine)

    joining = {"person_name": {"first_name": "Ny", "last_name": "Elev"}, "class_ids": [klass["id"]]}
    created = await send(client, "POST", "/v1/classes/students", with_correlation(headers), joining)
    await problem_of(created, 409, "CLASS_ARCHIVED")
    for student in (other, member):  # a member named again too: naming it is refused
        added = await send(
            client,
            "PUT",
            f"/v1/classes/students/{student['id']}",
            with_correlation(headers),
            {"add_class_ids": [klass["id"]]},
        )
        await problem_of(added, 409, "CLASS_ARCHIVED")
    missing_student = await send(
        client,
        "PUT",
        f"/v1/classes/students/{uuid.uuid4()}",
        with_correlation(headers),
        {"add_class_ids": [klass["id"]]},
    )
    await problem_of(missing_student, 404, "STUDENT_NOT_FOUND")  # not found comes first
    assert await database_digest(engine) == before

    roster = await get_ok(client, f"{path}/roster", headers)
    assert [entry["student_id"] for entry in roster["students"]] == [member["id"]]
    renamed = await json_of(
        await send(client, "PUT", path, with_correlation(headers), {"name": "9A 2025"}), 200
    )
    assert (renamed["name"], renamed["status"]) == ("9A 2025", "archived")
    removed = await send(
        client,
        "PUT",
        f"/v1/classes/students/{member['id']}",
        with_correlation(headers),
        {"remove_class_ids": [klass["id"]]},
    )
    assert (await json_of(removed, 200))["class_ids"] == []
    assert (await get_ok(client, path, headers))["student_count"] == 0
