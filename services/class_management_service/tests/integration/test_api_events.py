"""Each change made through the API reaches the real broker as the right event.

Checked per event: the topic, the Kafka key (the aggregate id), the envelope (event type,
source service, correlation id of the request), the payload and the aggregate's version.
The broker is shared by the whole session, so events are always picked by aggregate id.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from common_core.events import (
    ClassCreatedV1,
    ClassDeletedV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentUpdatedV1,
    topic_for,
)
from pydantic import BaseModel

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    json_of,
    problem_of,
    with_correlation,
)
from services.class_management_service.tests.support.kafka_events import (
    ConsumedEvent,
    EventCollector,
)

SOURCE_SERVICE = "class_management_service"


async def _the_event(
    events: EventCollector,
    aggregate_id: str,
    event_cls: type[BaseModel],
    correlation_id: str,
    version: int,
) -> Any:
    """The one event of ``event_cls`` for the aggregate at ``version``, fully checked."""
    topic = topic_for(event_cls)
    (event,) = await events.wait_for(
        lambda e: (
            e.key == aggregate_id.encode()
            and e.topic == topic
            and e.envelope.data.version == version
        )
    )
    _check_envelope(event, aggregate_id, event_cls, correlation_id)
    return event.envelope.data


def _check_envelope(
    event: ConsumedEvent, aggregate_id: str, event_cls: type[BaseModel], correlation_id: str
) -> None:
    envelope = event.envelope
    assert event.topic == topic_for(event_cls)
    assert event.key == aggregate_id.encode()
    assert envelope.event_type == event.topic
    assert envelope.source_service == SOURCE_SERVICE
    assert str(envelope.correlation_id) == correlation_id
    assert envelope.schema_version == 1
    assert envelope.event_timestamp.tzinfo is not None
    assert isinstance(envelope.data, event_cls)
    assert envelope.data.aggregate_id == aggregate_id
    assert event.headers["event_type"] == event.topic.encode()
    assert event.headers["event_id"] == str(envelope.event_id).encode()
    assert event.headers["correlation_id"] == correlation_id.encode()


def _of(events: EventCollector, aggregate_id: str) -> list[ConsumedEvent]:
    return events.matching(lambda e: e.key == aggregate_id.encode())


# -- classes -----------------------------------------------------------------------------


async def test_creating_a_class_publishes_class_created(
    client, headers, user_id, events: EventCollector
) -> None:
    response = await client.post(
        "/v1/classes", json={"name": " 9A English ", "course_codes": ["ENG6"]}, headers=headers
    )
    created = await json_of(response, 201)

    data = await _the_event(
        events, created["id"], ClassCreatedV1, headers["X-Correlation-ID"], version=1
    )

    assert str(data.class_id) == created["id"]
    assert data.class_designation == "9A English"
    assert [code.value for code in data.course_codes] == ["ENG6"]
    assert data.user_id == user_id
    assert data.version == created["version"] == 1


async def test_updating_a_class_publishes_class_updated_with_the_changed_fields(
    client, headers, user_id, events: EventCollector
) -> None:
    created = await create_class(client, headers, name="before", course_code="SV1")
    rename = with_correlation(headers)
    recourse = with_correlation(headers)

    renamed = await json_of(
        await client.put(f"/v1/classes/{created['id']}", json={"name": "after"}, headers=rename),
        200,
    )
    moved = await json_of(
        await client.put(
            f"/v1/classes/{created['id']}", json={"course_codes": ["SV2"]}, headers=recourse
        ),
        200,
    )

    first = await _the_event(
        events, created["id"], ClassUpdatedV1, rename["X-Correlation-ID"], version=2
    )
    second = await _the_event(
        events, created["id"], ClassUpdatedV1, recourse["X-Correlation-ID"], version=3
    )
    # The whole state after each change, and what changed before it.
    assert (first.class_designation, first.course_codes) == ("after", ["SV1"])
    assert first.previous.model_dump() == {"class_designation": "before"}
    assert first.version == renamed["version"] == 2
    assert second.class_designation == "after"
    assert [code.value for code in second.course_codes] == ["SV2"]
    assert second.previous.model_dump() == {"course_codes": ["SV1"]}
    assert second.version == moved["version"] == 3
    assert first.user_id == second.user_id == user_id


async def test_deleting_a_class_publishes_class_deleted(
    client, headers, user_id, events: EventCollector
) -> None:
    created = await create_class(client, headers)
    delete = with_correlation(headers)

    response = await client.delete(f"/v1/classes/{created['id']}", headers=delete)
    assert response.status_code == 204

    data = await _the_event(
        events, created["id"], ClassDeletedV1, delete["X-Correlation-ID"], version=2
    )
    assert str(data.class_id) == created["id"]
    assert data.user_id == user_id


# -- students ----------------------------------------------------------------------------


async def test_creating_a_student_publishes_student_created(
    client, headers, user_id, events: EventCollector
) -> None:
    first = await create_class(client, headers)
    second = await create_class(client, headers)
    request = with_correlation(headers)

    response = await client.post(
        "/v1/classes/students",
        json={
            "person_name": {"first_name": "Ada", "last_name": "Lovelace"},
            "email": "Ada@Example.com",
            "class_ids": [first["id"], second["id"]],
        },
        headers=request,
    )
    student = await json_of(response, 201)

    data = await _the_event(
        events, student["id"], StudentCreatedV1, request["X-Correlation-ID"], version=1
    )
    assert str(data.student_id) == student["id"]
    assert (data.first_name, data.last_name) == ("Ada", "Lovelace")
    assert data.student_email == student["email"]
    assert sorted(str(class_id) for class_id in data.class_ids) == sorted(
        [first["id"], second["id"]]
    )
    assert data.created_by_user_id == user_id
    assert data.version == 1


async def test_updating_a_student_publishes_student_updated_with_the_changes(
    client, headers, user_id, events: EventCollector
) -> None:
    old = await create_class(client, headers)
    new = await create_class(client, headers)
    student = await create_student(client, headers, "Ada", "Byron", class_ids=[old["id"]])
    rename = with_correlation(headers)
    move = with_correlation(headers)

    await json_of(
        await client.put(
            f"/v1/classes/students/{student['id']}",
            json={
                "person_name": {"first_name": "Ada", "last_name": "Lovelace"},
                "email": "ada@example.com",
            },
            headers=rename,
        ),
        200,
    )
    moved = await json_of(
        await client.put(
            f"/v1/classes/students/{student['id']}",
            json={"add_class_ids": [new["id"]], "remove_class_ids": [old["id"]]},
            headers=move,
        ),
        200,
    )

    renamed = await _the_event(
        events, student["id"], StudentUpdatedV1, rename["X-Correlation-ID"], version=2
    )
    assert (renamed.first_name, renamed.last_name) == ("Ada", "Lovelace")
    assert renamed.student_email == "ada@example.com"
    assert renamed.add_class_ids is None and renamed.remove_class_ids is None
    assert renamed.updated_by_user_id == user_id
    enrolment = await _the_event(
        events, student["id"], StudentUpdatedV1, move["X-Correlation-ID"], version=3
    )
    assert (enrolment.first_name, enrolment.last_name, enrolment.student_email) == (
        "Ada",
        "Lovelace",
        "ada@example.com",
    )
    assert [str(i) for i in enrolment.class_ids] == [new["id"]]
    assert enrolment.previous.model_dump() == {"class_ids": [uuid.UUID(old["id"])]}
    assert [str(i) for i in enrolment.add_class_ids] == [new["id"]]
    assert [str(i) for i in enrolment.remove_class_ids] == [old["id"]]
    assert enrolment.version == moved["version"] == 3


async def test_deleting_a_student_publishes_student_deleted(
    client, headers, user_id, events: EventCollector
) -> None:
    student = await create_student(client, headers)
    delete = with_correlation(headers)

    response = await client.delete(f"/v1/classes/students/{student['id']}", headers=delete)
    assert response.status_code == 204

    data = await _the_event(
        events, student["id"], StudentDeletedV1, delete["X-Correlation-ID"], version=2
    )
    assert str(data.student_id) == student["id"]
    assert data.user_id == user_id


# -- correlation, order and silence ------------------------------------------------------


async def test_a_generated_correlation_id_is_carried_into_the_event(
    client, user_id, events: EventCollector
) -> None:
    response = await client.post(
        "/v1/classes", json={"name": "9Z", "course_codes": ["SV3"]}, headers={"X-User-ID": user_id}
    )
    created = await json_of(response, 201)
    generated = response.headers["X-Correlation-ID"]
    assert uuid.UUID(generated)

    data = await _the_event(events, created["id"], ClassCreatedV1, generated, version=1)
    assert data.user_id == user_id


async def test_an_aggregates_events_arrive_in_order_and_refused_requests_publish_nothing(
    client, headers, engine, events: EventCollector
) -> None:
    created = await create_class(client, headers, name="v1")
    class_path = f"/v1/classes/{created['id']}"
    stale = await client.put(
        class_path, json={"name": "stale"}, headers={**headers, "If-Match": '"5"'}
    )
    invalid = await client.put(class_path, json={"course_codes": ["SV1", "SV2"]}, headers=headers)
    await problem_of(stale, 412, "PRECONDITION_FAILED")
    await problem_of(invalid, 400, "MULTIPLE_COURSE_ERROR")
    await json_of(await client.get(class_path, headers=headers), 200)
    await json_of(await client.put(class_path, json={}, headers=headers), 200)  # no change
    await json_of(await client.put(class_path, json={"name": "v2"}, headers=headers), 200)
    await json_of(await client.put(class_path, json={"name": "v3"}, headers=headers), 200)
    assert (await client.delete(class_path, headers=headers)).status_code == 204

    # Topics are fetched independently: wait for all four, not just the last one.
    await events.wait_for(lambda e: e.key == created["id"].encode(), count=4)
    await _the_event(events, created["id"], ClassDeletedV1, headers["X-Correlation-ID"], version=4)

    await asyncio.sleep(0.5)
    await events.poll()
    assert len(_of(events, created["id"])) == 4  # exactly these, nothing more
    published = sorted(_of(events, created["id"]), key=lambda e: e.envelope.data.version)
    assert [type(e.envelope.data) for e in published] == [
        ClassCreatedV1,
        ClassUpdatedV1,
        ClassUpdatedV1,
        ClassDeletedV1,
    ]
    assert [e.envelope.data.version for e in published] == [1, 2, 3, 4]
    updates = published[1:3]
    assert [e.envelope.data.class_designation for e in updates] == ["v2", "v3"]
    # One key, one partition: consumers see one aggregate's events in order.
    assert updates[0].partition == updates[1].partition
    assert updates[0].offset < updates[1].offset
    assert len({e.envelope.event_id for e in published}) == len(published)
