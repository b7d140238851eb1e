"""Create every Kafka topic the platform uses: idempotent, patient with a broker still starting.

The topic names come from :data:`common_core.events.topics.ALL_TOPICS`, the one list of
topics, and their configuration (the state topics' ``cleanup.policy=compact``) from
:data:`~common_core.events.topics.TOPIC_CONFIGS`; this module never names a topic itself. Used by
``python -m services.class_management_service create-topics`` (the compose service
``kafka_topic_setup``) and by tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    IncompatibleBrokerVersion,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnsupportedVersionError,
    for_code,
)
from common_core.events.topics import ALL_TOPICS, TOPIC_CONFIGS

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "CreateTopicsUnsupportedError",
    "TopicSetupError",
    "create_topics",
]

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_SECONDS = 60.0
"""How long :func:`create_topics` keeps retrying while the broker is unreachable or not ready."""

_REQUEST_TIMEOUT_MS = 10_000
_FIRST_BACKOFF_SECONDS = 0.25
_MAX_BACKOFF_SECONDS = 3.0


class TopicSetupError(RuntimeError):
    """The topics could not be created (broker unreachable in time, or a refused topic)."""


class CreateTopicsUnsupportedError(TopicSetupError):
    """The broker does not implement the Kafka CreateTopics API (or not a usable version)."""


class _RetryableSetupError(Exception):
    """Internal: the broker answered, but is not ready yet (no controller, retriable error)."""


async def create_topics(
    bootstrap_servers: str,
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    topics: Iterable[str] = ALL_TOPICS,
    configs: Mapping[str, Mapping[str, str]] = TOPIC_CONFIGS,
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
) -> list[str]:
    """Make sure every topic in ``topics`` exists on the broker; return those this call created.

    A topic is created with its topic-level configuration from ``configs`` (none when it is
    not named there). A topic that already exists is left as it is (its partition count and
    configuration are not changed; an existing topic whose ``cleanup.policy`` differs from
    ``configs`` is logged as a warning), so running this twice is harmless: the second run
    returns ``[]``. While the broker cannot be
    reached, or answers that it is not ready, the attempt is repeated with backoff for up to
    ``connect_timeout_seconds``; after that :class:`TopicSetupError` is raised. A broker that
    does not support CreateTopics raises :class:`CreateTopicsUnsupportedError` at once
    (unless every topic already exists, in which case nothing needs creating).
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if replication_factor < 1:
        raise ValueError(f"replication_factor must be >= 1, got {replication_factor}")
    if connect_timeout_seconds <= 0:
        raise ValueError(f"connect_timeout_seconds must be > 0, got {connect_timeout_seconds}")
    wanted = _distinct_topic_names(topics)
    if not wanted:
        return []

    created: set[str] = set()
    deadline = time.monotonic() + connect_timeout_seconds
    backoff = _FIRST_BACKOFF_SECONDS
    attempt = 0
    while True:
        attempt += 1
        try:
            await _create_missing(
                bootstrap_servers, wanted, partitions, replication_factor, configs, created
            )
        except (KafkaError, OSError, TimeoutError, _RetryableSetupError) as exc:
            if isinstance(exc, KafkaError) and _is_unsupported(exc):
                raise _unsupported(bootstrap_servers, exc) from exc
            if isinstance(exc, KafkaError) and not _is_retriable(exc):
                raise TopicSetupError(
                    f"creating topics on {bootstrap_servers} failed: {_describe(exc)}"
                ) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TopicSetupError(
                    f"Kafka at {bootstrap_servers} was not ready within "
                    f"{connect_timeout_seconds:g}s ({attempt} attempts); last error: "
                    f"{_describe(exc)}"
                ) from exc
            logger.info(
                "Kafka at %s not ready (attempt %d: %s); retrying in %.2fs",
                bootstrap_servers,
                attempt,
                _describe(exc),
                min(backoff, remaining),
            )
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            continue
        break

    result = [topic for topic in wanted if topic in created]
    logger.info(
        "Kafka topics on %s: created %s; already present %s",
        bootstrap_servers,
        result or "none",
        [topic for topic in wanted if topic not in created] or "none",
    )
    return result


async def _create_missing(
    bootstrap_servers: str,
    wanted: tuple[str, ...],
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, Mapping[str, str]],
    created: set[str],
) -> None:
    """One attempt: connect, create what is missing, check that every topic now exists.

    Names that the broker reports as created are added to ``created`` as soon as it says so,
    so that a later attempt (after a retriable failure) still reports them.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="huleedu-topic-setup",
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        if cluster.get("controller_id", -1) < 0:
            raise _RetryableSetupError("the broker has no active controller yet")

        # Listing every topic (a metadata request naming none) never auto-creates one,
        # unlike a metadata request naming the wanted topics.
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic not in existing]
        if missing:
            try:
                response = await admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            partitions,
                            replication_factor,
                            topic_configs=dict(configs.get(topic, {})),
                        )
                        for topic in missing
                    ],
                    timeout_ms=_REQUEST_TIMEOUT_MS,
                )
            except NotImplementedError as exc:
                # aiokafka: the broker lists CreateTopics, but no version aiokafka speaks.
                raise _unsupported(bootstrap_servers, exc) from exc
            _record_response(bootstrap_servers, response, created)

        still_missing = sorted(set(wanted) - set(await admin.list_topics()))
        if still_missing:
            raise _RetryableSetupError(
                f"topics not yet visible in the broker's metadata: {', '.join(still_missing)}"
            )
        kept = [t for t in wanted if t in existing and configs.get(t, {}).get(_CLEANUP_POLICY)]
        if kept:
            await _warn_about_cleanup_policy(admin, bootstrap_servers, kept, configs)
    finally:
        await admin.close()


_CLEANUP_POLICY = "cleanup.policy"


async def _warn_about_cleanup_policy(
    admin: AIOKafkaAdminClient,
    bootstrap_servers: str,
    topics: list[str],
    configs: Mapping[str, Mapping[str, str]],
) -> None:
    """Warn about existing topics whose cleanup.policy is not the registry's.

    A state topic created before (by hand, or by a broker's automatic topic creation) without
    compaction still works, but keeps every record; changing a live topic's configuration is
    left to its operators.
    """
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    except (KafkaError, NotImplementedError) as exc:
        # Only a check: a broker without DescribeConfigs still gets its topics.
        logger.info("Could not read the configuration of %s: %s", topics, _describe(exc))
        return
    actual = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in described
        for resource in response.resources
        if resource[0] == 0
    }
    for topic in topics:
        wanted = configs[topic][_CLEANUP_POLICY]
        found = actual.get(topic, {}).get(_CLEANUP_POLICY, "delete")
        if found != wanted:
            logger.warning(
                "Kafka topic %s on %s exists with cleanup.policy=%s, not %s; set it with the "
                "broker's tooling (kafka-configs --alter --add-config cleanup.policy=%s)",
                topic,
                bootstrap_servers,
                found,
                wanted,
                wanted,
            )


def _record_response(bootstrap_servers: str, response: Any, created: set[str]) -> None:
    """Read a CreateTopics response (any version); raise for a topic the broker refused."""
    refused: list[str] = []
    retry: list[str] = []
    for entry in response.topic_errors:
        # v0 entries are (topic, error_code); v1+ add an error_message.
        topic, error_code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if error_code == 0:
            created.add(topic)
            continue
        error_cls = for_code(error_code)
        if error_cls is TopicAlreadyExistsError:
            continue
        if error_cls is UnsupportedVersionError:
            raise _unsupported(bootstrap_servers, error_cls(message or ""))
        described = f"{topic}: {error_cls.__name__} ({error_code}) {message or ''}".rstrip()
        if getattr(error_cls, "retriable", False):
            retry.append(described)
        else:
            refused.append(described)
    if refused:
        raise TopicSetupError(
            f"Kafka at {bootstrap_servers} refused to create topics: {'; '.join(refused)}"
        )
    if retry:
        raise _RetryableSetupError(f"retriable CreateTopics errors: {'; '.join(retry)}")


def _distinct_topic_names(topics: Iterable[str]) -> tuple[str, ...]:
    if isinstance(topics, str):
        raise TypeError("topics must be an iterable of topic names, not a single string")
    names: list[str] = []
    for topic in topics:
        if not isinstance(topic, str) or not topic.strip():
            raise ValueError(f"invalid topic name: {topic!r}")
        if topic not in names:
            names.append(topic)
    return tuple(names)


def _is_unsupported(exc: KafkaError) -> bool:
    return isinstance(exc, IncompatibleBrokerVersion | UnsupportedVersionError)


def _is_retriable(exc: KafkaError) -> bool:
    return isinstance(exc, KafkaTimeoutError) or bool(getattr(exc, "retriable", False))


def _unsupported(bootstrap_servers: str, exc: BaseException) -> CreateTopicsUnsupportedError:
    return CreateTopicsUnsupportedError(
        f"Kafka-protocol broker at {bootstrap_servers} does not support the CreateTopics API "
        f"({_describe(exc)}); create the topics with the broker's own tooling or enable "
        "automatic topic creation (auto.create.topics.enable=true)"
    )


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"
