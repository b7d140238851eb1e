"""The wire contract of every event the service publishes, read raw from the real broker.

Consumers know only ``common_core``: they parse a message's value with
``parse_event_message`` and key their state by the Kafka key. These tests drive the API so
that every event type is published, read the messages as bytes (no parsing on the way in),
and check each against the contract: the exact envelope fields on the wire, a payload that
parses into the event class its topic carries, a lossless round trip, and key and headers
that agree with the envelope.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from common_core.events import (
    ALL_TOPICS,
    CLASS_CREATED_TOPIC,
    CLASS_DELETED_TOPIC,
    CLASS_STATE_TOPIC,
    CLASS_UPDATED_TOPIC,
    ESSAY_LINKED_TOPIC,
    ESSAY_UNLINKED_TOPIC,
    EVENT_BY_TOPIC,
    STATE_TOPICS,
    STUDENT_CREATED_TOPIC,
    STUDENT_DELETED_TOPIC,
    STUDENT_STATE_TOPIC,
    STUDENT_UPDATED_TOPIC,
    EventEnvelope,
    EventParseError,
    parse_event_message,
    parse_state_record,
)

from services.class_management_service.tests.support.api import (
    json_of,
    with_correlation,
)
from services.class_management_service.topic_setup import create_topics

ENVELOPE_FIELDS = set(EventEnvelope.model_fields)
# What _publish_every_event_type causes: every topic but the unlink (the w15b routes').
PUBLISHED_TOPICS = tuple(topic for topic in ALL_TOPICS if topic != ESSAY_UNLINKED_TOPIC)
SOURCE_SERVICE = "class_management_service"


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone of a state topic
    headers: dict[str, bytes]


class RawTopicReader:
    """Every message published to the platform's topics after it started, as raw bytes."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self.messages: list[RawMessage] = []

    async def __aenter__(self) -> RawTopicReader:
        await create_topics(self._bootstrap)  # idempotent: the topics the service publishes to
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()  # loads the cluster metadata
        partitions = [
            TopicPartition(topic, partition)
            for topic in ALL_TOPICS
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        assert {tp.topic for tp in partitions} == set(ALL_TOPICS)
        consumer.assign(partitions)
        # Start at the current end: only what this test causes is read.
        for partition, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(partition, offset)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for_keys(
        self, expected: dict[bytes, int], timeout: float = 20.0
    ) -> list[RawMessage]:
        """At least ``expected[key]`` messages of each key (other messages are ignored)."""
        assert self._consumer is not None
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if m.key in expected]
            counts = {key: sum(1 for m in found if m.key == key) for key in expected}
            if all(counts[key] >= wanted for key, wanted in expected.items()):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {expected} messages by key, got {counts}")
            batches = await self._consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                self.messages.extend(
                    RawMessage(
                        topic=partition.topic,
                        partition=partition.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value,
                        headers=dict(record.headers),
                    )
                    for record in records
                )


@pytest.fixture
async def raw_reader(kafka_bootstrap: str):
    async with RawTopicReader(kafka_bootstrap) as reader:
        yield reader


async def _publish_every_event_type(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Drive the API through every kind of change; returns ids and each request's
    correlation id."""
    correlation: dict[str, str] = {}

    async def call(label: str, method: str, path: str, status: int, body: Any = None) -> Any:
        request_headers = with_correlation(headers)
        correlation[label] = request_headers["X-Correlation-ID"]
        extra = {"json": body} if body is not None else {}
        response = await client.open(path, method=method, headers=request_headers, **extra)
        if status == 204:
            assert response.status_code == 204, await response.get_data(as_text=True)
            return None
        return await json_of(response, status)

    klass = await call(
        "class_created", "POST", "/v1/classes", 201, {"name": "Contract", "course_codes": ["SV1"]}
    )
    student = await call(
        "student_created",
        "POST",
        "/v1/classes/students",
        201,
        {
            "person_name": {"first_name": "Con", "last_name": "Tract"},
            "email": "contract@example.com",
            "class_ids": [klass["id"]],
        },
    )
    await call(
        "class_updated",
        "PUT",
        f"/v1/classes/{klass['id']}",
        200,
        {"name": "Contract 2", "course_codes": ["SV2"]},
    )
    await call(
        "student_updated",
        "PUT",
        f"/v1/classes/students/{student['id']}",
        200,
        {
            "person_name": {"first_name": "Con", "last_name": "Tracted"},
            "remove_class_ids": [klass["id"]],
        },
    )
    essay_id = str(uuid.uuid4())
    link_path = f"/v1/classes/students/{student['id']}/essays/{essay_id}"
    link = await call("essay_linked", "PUT", link_path, 201)
    await call("essay_linked_again", "PUT", link_path, 200)  # a repeat link: no event
    await call("student_deleted", "DELETE", f"/v1/classes/students/{student['id']}", 204)
    await call("class_deleted", "DELETE", f"/v1/classes/{klass['id']}", 204)
    return {
        "class_id": klass["id"],
        "student_id": student["id"],
        "essay_id": essay_id,
        "linked_at": link["created_at"],
        "correlation": correlation,
    }


# Per key, what _publish_every_event_type publishes: the class's five changes (created; its
# student joined; renamed; its student left; deleted) and their five state records (the
# last a tombstone); the student's three changes and three records; the essay's link.
EXPECTED_COUNTS = {"class_id": 10, "student_id": 6, "essay_id": 1}


def _expected(published: dict[str, Any]) -> dict[bytes, int]:
    return {published[name].encode(): count for name, count in EXPECTED_COUNTS.items()}


async def test_every_published_message_honours_the_event_contract(
    client, headers, user_id, raw_reader: RawTopicReader
) -> None:
    published = await _publish_every_event_type(client, headers)
    messages = await raw_reader.wait_for_keys(_expected(published))

    assert len(messages) == sum(EXPECTED_COUNTS.values())
    assert {m.topic for m in messages} == set(PUBLISHED_TOPICS)
    correlation_ids = set(published["correlation"].values())
    tombstones = [m for m in messages if m.value is None]
    assert sorted((m.topic, m.key) for m in tombstones) == [
        (CLASS_STATE_TOPIC, published["class_id"].encode()),
        (STUDENT_STATE_TOPIC, published["student_id"].encode()),
    ]
    for tombstone in tombstones:
        record = parse_state_record(tombstone.topic, tombstone.key, tombstone.value)
        assert record.envelope is None
        assert tombstone.headers["event_type"] == tombstone.topic.encode()
    for message in messages:
        if message.value is None:
            continue
        raw = json.loads(message.value)
        event_cls = EVENT_BY_TOPIC[message.topic]
        # The wire format: exactly the envelope's fields, and exactly the event's fields.
        assert set(raw) == ENVELOPE_FIELDS, message.topic
        assert set(raw["data"]) == set(event_cls.model_fields), message.topic
        assert raw["event_type"] == message.topic
        assert raw["schema_version"] == 1
        assert raw["source_service"] == SOURCE_SERVICE
        assert raw["metadata"] is None or isinstance(raw["metadata"], dict)
        assert uuid.UUID(raw["event_id"])
        assert raw["correlation_id"] in correlation_ids
        assert datetime.fromisoformat(raw["event_timestamp"].replace("Z", "+00:00")).tzinfo
        if message.topic != ESSAY_LINKED_TOPIC:
            assert isinstance(raw["data"]["version"], int) and raw["data"]["version"] >= 1
        # What consumers do: parse with common_core into the topic's event class.
        envelope = parse_event_message(message.value)
        if message.topic in STATE_TOPICS:
            state = parse_state_record(message.topic, message.key, message.value)
            assert state.envelope == envelope
        assert type(envelope.data) is event_cls
        assert envelope.event_type == message.topic
        assert envelope.model_dump(mode="json") == raw  # nothing lost or added
        assert parse_event_message(message.value.decode()) == envelope
        # Key and headers agree with the envelope.
        assert message.key == envelope.data.aggregate_id.encode()
        assert message.headers["event_type"] == message.topic.encode()
        assert message.headers["event_id"] == str(envelope.event_id).encode()
        assert message.headers["correlation_id"] == str(envelope.correlation_id).encode()

    assert len({json.loads(m.value)["event_id"] for m in messages if m.value}) == 15


async def test_published_payloads_carry_the_request_facts(
    client, headers, user_id, raw_reader: RawTopicReader
) -> None:
    published = await _publish_every_event_type(client, headers)
    class_id, student_id = published["class_id"], published["student_id"]

    messages = await raw_reader.wait_for_keys(_expected(published))

    by_version = {
        (m.topic, json.loads(m.value)["data"]["version"]): json.loads(m.value)
        for m in messages
        if m.value is not None and m.topic != ESSAY_LINKED_TOPIC
    }
    correlation = published["correlation"]
    klass = {
        "class_id": class_id,
        "class_designation": "Contract",
        "course_codes": ["SV1"],
        "user_id": user_id,
        "version": 1,
        "student_count": 0,
        "status": "active",
    }
    student = {
        "student_id": student_id,
        "first_name": "Con",
        "last_name": "Tract",
        "legal_full_name": "Con Tract",
        "student_email": "contract@example.com",
        "class_ids": [class_id],
        "created_by_user_id": user_id,
        "version": 1,
    }
    joined = {**klass, "student_count": 1, "version": 2}
    renamed = {**joined, "class_designation": "Contract 2", "course_codes": ["SV2"], "version": 3}
    left = {**renamed, "student_count": 0, "version": 4}
    moved = {**student, "last_name": "Tracted", "class_ids": [], "version": 2}
    moved_event = {k: v for k, v in moved.items() if k != "created_by_user_id"}
    expected = {
        (CLASS_CREATED_TOPIC, 1): ("class_created", klass),
        (CLASS_STATE_TOPIC, 1): ("class_created", klass),
        (STUDENT_CREATED_TOPIC, 1): ("student_created", student),
        (STUDENT_STATE_TOPIC, 1): ("student_created", student),
        (CLASS_UPDATED_TOPIC, 2): (
            "student_created",
            {**joined, "previous": {"student_count": 0}},
        ),
        (CLASS_STATE_TOPIC, 2): ("student_created", joined),
        (CLASS_UPDATED_TOPIC, 3): (
            "class_updated",
            {**renamed, "previous": {"class_designation": "Contract", "course_codes": ["SV1"]}},
        ),
        (CLASS_STATE_TOPIC, 3): ("class_updated", renamed),
        (STUDENT_UPDATED_TOPIC, 2): (
            "student_updated",
            {
                **moved_event,
                "add_class_ids": None,
                "remove_class_ids": [class_id],
                "updated_by_user_id": user_id,
                "previous": {"last_name": "Tract", "class_ids": [class_id]},
            },
        ),
        (STUDENT_STATE_TOPIC, 2): ("student_updated", moved),
        (CLASS_UPDATED_TOPIC, 4): ("student_updated", {**left, "previous": {"student_count": 1}}),
        (CLASS_STATE_TOPIC, 4): ("student_updated", left),
        (STUDENT_DELETED_TOPIC, 3): (
            "student_deleted",
            {"student_id": student_id, "user_id": user_id, "version": 3},
        ),
        (CLASS_DELETED_TOPIC, 5): (
            "class_deleted",
            {"class_id": class_id, "user_id": user_id, "version": 5},
        ),
    }
    assert set(by_version) == set(expected)
    for (topic, version), (label, data) in expected.items():
        assert by_version[topic, version]["correlation_id"] == correlation[label], topic
        assert by_version[topic, version]["data"] == data, (topic, version)
    (linked,) = [json.loads(m.value) for m in messages if m.topic == ESSAY_LINKED_TOPIC]
    assert linked["correlation_id"] == correlation["essay_linked"]
    linked_at = linked["data"].pop("linked_at")
    assert linked["data"] == {
        "essay_id": published["essay_id"],
        "student_id": student_id,
        "user_id": user_id,
    }
    assert _instant(linked_at) == _instant(published["linked_at"])


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_the_event_type_decides_the_schema(
    client, headers, raw_reader: RawTopicReader
) -> None:
    """A consumer cannot be fooled into reading one event as another: relabelled, it fails."""
    published = await _publish_every_event_type(client, headers)

    messages = await raw_reader.wait_for_keys({published["class_id"].encode(): 10})

    created = next(m for m in messages if m.topic == "huleedu.class.created.v1")
    assert created.value is not None
    raw = json.loads(created.value)
    for other_topic in ("huleedu.class.student.created.v1", "huleedu.class.student.deleted.v1"):
        relabelled = json.dumps({**raw, "event_type": other_topic}).encode()
        with pytest.raises(EventParseError) as error:
            parse_event_message(relabelled)
        assert error.value.event_type == other_topic
    with pytest.raises(EventParseError):
        parse_event_message(json.dumps({**raw, "schema_version": 2}).encode())
    with pytest.raises(EventParseError):
        parse_event_message(json.dumps({**raw, "event_type": "huleedu.unknown.v1"}).encode())
