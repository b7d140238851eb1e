"""create_topics against the session's real Kafka-protocol broker (the devstack's tansu).

The broker is shared by the whole test session, so tests that need a clean slate use topic
names of their own; the default topic list (common_core's ALL_TOPICS) is only checked for
"exists afterwards", since another test may already have created those topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion
from aiokafka.protocol.admin import CreateTopicsResponse_v0, CreateTopicsResponse_v3
from common_core.events.topics import ALL_TOPICS, STATE_TOPICS, TOPIC_CONFIGS
from huleedu_devstack import free_port

from services.class_management_service import topic_setup
from services.class_management_service.topic_setup import (
    CreateTopicsUnsupportedError,
    TopicSetupError,
    create_topics,
)

REPO_ROOT = Path(__file__).resolve().parents[4]


def _unique_topics(count: int) -> list[str]:
    run = uuid.uuid4().hex[:12]
    return [f"test.topic-setup.{run}.{index}" for index in range(count)]


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def _partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    async with _admin(bootstrap) as admin:
        described = await admin.describe_topics(topics)
    return {entry["topic"]: len(entry["partitions"]) for entry in described}


async def _cleanup_policies(bootstrap: str, topics: list[str]) -> dict[str, str]:
    """Each topic's cleanup.policy as the broker reports it ("delete" when not overridden)."""
    async with _admin(bootstrap) as admin:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    policies = dict.fromkeys(topics, "delete")
    for response in described:
        for error_code, _, _, name, entries, *_ in response.resources:
            assert error_code == 0, (name, error_code)
            for key, value, *_ in entries:
                if key == "cleanup.policy":
                    policies[name] = value
    return policies


async def _existing_topics(bootstrap: str) -> set[str]:
    async with _admin(bootstrap) as admin:
        return set(await admin.list_topics())


async def test_default_topics_are_common_core_all_topics(kafka_bootstrap: str) -> None:
    created = await create_topics(kafka_bootstrap)

    assert set(created) <= set(ALL_TOPICS)
    assert created == [topic for topic in ALL_TOPICS if topic in created]  # ALL_TOPICS order
    assert set(ALL_TOPICS) <= await _existing_topics(kafka_bootstrap)
    if created:
        counts = await _partition_counts(kafka_bootstrap, created)
        assert counts == dict.fromkeys(created, 3)
        # The state topics this run created are compacted, the change topics are not.
        policies = await _cleanup_policies(kafka_bootstrap, created)
        assert policies == {
            topic: "compact" if topic in STATE_TOPICS else "delete" for topic in created
        }
    # Every topic exists now, so a second run creates nothing and succeeds.
    assert await create_topics(kafka_bootstrap) == []


async def test_creates_missing_topics_with_requested_partitions(kafka_bootstrap: str) -> None:
    topics = _unique_topics(3)

    created = await create_topics(kafka_bootstrap, topics=topics, partitions=2)

    assert created == topics
    assert await _partition_counts(kafka_bootstrap, topics) == dict.fromkeys(topics, 2)


async def test_is_idempotent_and_reports_only_what_it_created(kafka_bootstrap: str) -> None:
    first, second = _unique_topics(2)
    assert await create_topics(kafka_bootstrap, topics=[first]) == [first]

    # Duplicates in the input are harmless; an existing topic is kept, not an error.
    created = await create_topics(kafka_bootstrap, topics=[first, second, second])

    assert created == [second]
    assert await create_topics(kafka_bootstrap, topics=[first, second]) == []
    assert {first, second} <= await _existing_topics(kafka_bootstrap)


async def test_topics_are_created_with_their_registry_configuration(
    kafka_bootstrap: str,
) -> None:
    """What create-topics does for the state topics, on names of this test's own."""
    compacted, plain = _unique_topics(2)

    created = await create_topics(
        kafka_bootstrap,
        topics=[compacted, plain],
        configs={compacted: TOPIC_CONFIGS[STATE_TOPICS[0]]},
    )

    assert created == [compacted, plain]
    assert await _cleanup_policies(kafka_bootstrap, [compacted, plain]) == {
        compacted: "compact",
        plain: "delete",
    }


def test_the_registry_compacts_exactly_the_state_topics() -> None:
    assert {topic: dict(config) for topic, config in TOPIC_CONFIGS.items() if config} == {
        topic: {"cleanup.policy": "compact"} for topic in STATE_TOPICS
    }
    assert set(TOPIC_CONFIGS) == set(ALL_TOPICS)


async def test_an_existing_topic_that_should_be_compacted_is_kept_with_a_warning(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    (topic,) = _unique_topics(1)
    await create_topics(kafka_bootstrap, topics=[topic])  # created without compaction

    with caplog.at_level("WARNING", logger=topic_setup.__name__):
        created = await create_topics(
            kafka_bootstrap, topics=[topic], configs={topic: {"cleanup.policy": "compact"}}
        )

    assert created == []
    assert await _cleanup_policies(kafka_bootstrap, [topic]) == {topic: "delete"}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert (
        f"{topic} on {kafka_bootstrap} exists with cleanup.policy=delete, not compact"
        in (warnings[0])
    )


async def test_existing_topic_keeps_its_partition_count(kafka_bootstrap: str) -> None:
    (topic,) = _unique_topics(1)
    await create_topics(kafka_bootstrap, topics=[topic], partitions=1)

    assert await create_topics(kafka_bootstrap, topics=[topic], partitions=3) == []
    assert await _partition_counts(kafka_bootstrap, [topic]) == {topic: 1}


async def test_empty_topic_list_needs_no_broker() -> None:
    assert await create_topics("127.0.0.1:1", topics=[]) == []


async def test_waits_for_a_broker_that_comes_up_late(kafka_bootstrap: str) -> None:
    """Nothing listens on the port for a while; then a TCP relay to the real broker appears."""
    broker_host, broker_port = kafka_bootstrap.rsplit(":", 1)
    port = free_port()
    relays: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(broker_host, int(broker_port))
        for task in (
            asyncio.create_task(pipe(client_r, broker_w)),
            asyncio.create_task(pipe(broker_r, client_w)),
        ):
            relays.add(task)
            task.add_done_callback(relays.discard)

    async def start_late() -> asyncio.Server:
        await asyncio.sleep(1.5)
        return await asyncio.start_server(relay, "127.0.0.1", port)

    topics = _unique_topics(2)
    started = time.monotonic()
    server_task = asyncio.create_task(start_late())
    try:
        created = await create_topics(
            f"127.0.0.1:{port}", topics=topics, connect_timeout_seconds=30
        )
    finally:
        server = await server_task
        server.close()
        for task in list(relays):
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await server.wait_closed()

    assert time.monotonic() - started >= 1.5
    assert created == topics
    assert await _partition_counts(kafka_bootstrap, topics) == dict.fromkeys(topics, 3)


async def test_gives_up_after_the_connect_timeout() -> None:
    port = free_port()  # closed again: connections are refused
    started = time.monotonic()

    with pytest.raises(TopicSetupError, match=rf"127\.0\.0\.1:{port} was not ready within 1\.5s"):
        await create_topics(f"127.0.0.1:{port}", topics=["never"], connect_timeout_seconds=1.5)

    assert 1.4 <= time.monotonic() - started < 15


async def test_broker_without_create_topics_is_reported_clearly(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What aiokafka raises when the broker does not list the CreateTopics API."""

    async def no_create_topics(self: AIOKafkaAdminClient, *args: Any, **kwargs: Any) -> Any:
        raise IncompatibleBrokerVersion("CreateTopicsRequest cannot be used")

    monkeypatch.setattr(AIOKafkaAdminClient, "create_topics", no_create_topics)
    started = time.monotonic()

    with pytest.raises(CreateTopicsUnsupportedError, match="does not support the CreateTopics"):
        await create_topics(kafka_bootstrap, topics=_unique_topics(1))

    assert time.monotonic() - started < 15  # not retried until the connect timeout


async def test_broker_without_create_topics_is_fine_when_nothing_is_missing(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = _unique_topics(1)
    await create_topics(kafka_bootstrap, topics=topics)

    async def no_create_topics(self: AIOKafkaAdminClient, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("CreateTopics must not be sent when every topic exists")

    monkeypatch.setattr(AIOKafkaAdminClient, "create_topics", no_create_topics)
    assert await create_topics(kafka_bootstrap, topics=topics) == []


async def test_create_topics_command_creates_every_topic(kafka_bootstrap: str) -> None:
    """The exact command the compose service kafka_topic_setup runs."""
    env = {
        **os.environ,
        "CLASS_MANAGEMENT_SERVICE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PYTHONPATH": str(REPO_ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.class_management_service",
        "create-topics",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise

    assert process.returncode == 0, stderr.decode(errors="replace")
    assert set(ALL_TOPICS) <= await _existing_topics(kafka_bootstrap)


# The broker's answers that tansu never gives (it accepts every CreateTopics request),
# read from real aiokafka response objects.


def test_response_already_exists_is_not_an_error() -> None:
    created: set[str] = set()
    response = CreateTopicsResponse_v3(
        throttle_time_ms=0,
        topic_errors=[("a", 0, None), ("b", 36, "Topic with this name already exists.")],
    )

    topic_setup._record_response("broker:9092", response, created)

    assert created == {"a"}


def test_response_v0_without_messages_is_read() -> None:
    created: set[str] = set()
    topic_setup._record_response(
        "broker:9092", CreateTopicsResponse_v0(topic_errors=[("a", 0), ("b", 36)]), created
    )
    assert created == {"a"}


def test_response_refused_topic_raises_with_its_reason() -> None:
    response = CreateTopicsResponse_v3(
        throttle_time_ms=0,
        topic_errors=[
            ("ok", 0, None),
            ("bad", 38, "Replication factor: 3 larger than available brokers: 1."),
        ],
    )
    created: set[str] = set()

    with pytest.raises(TopicSetupError, match=r"bad: InvalidReplicationFactorError \(38\)"):
        topic_setup._record_response("broker:9092", response, created)
    assert created == {"ok"}


def test_response_unsupported_version_raises_unsupported() -> None:
    response = CreateTopicsResponse_v3(
        throttle_time_ms=0, topic_errors=[("a", 35, "CreateTopics is not supported")]
    )
    with pytest.raises(CreateTopicsUnsupportedError):
        topic_setup._record_response("broker:9092", response, set())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"partitions": 0}, ValueError),
        ({"replication_factor": 0}, ValueError),
        ({"connect_timeout_seconds": 0}, ValueError),
        ({"topics": ["ok", ""]}, ValueError),
        ({"topics": "one.topic.name"}, TypeError),
    ],
)
async def test_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        await create_topics("127.0.0.1:1", **kwargs)
