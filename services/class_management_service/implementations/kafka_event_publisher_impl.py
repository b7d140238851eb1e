"""Kafka side of the outbox: an aiokafka producer that reports each message's fate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)
from opentelemetry.trace import Span

from services.class_management_service.config import Settings
from services.class_management_service.domain import OutboxMessage
from services.class_management_service.tracing import end_publish_span, start_publish_span

logger = logging.getLogger(__name__)

# Errors about one message itself: retrying it will not help, and other messages may pass.
MESSAGE_ERRORS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
    PolicyViolationError,
    TypeError,
    ValueError,
)


def is_message_error(error: BaseException) -> bool:
    return isinstance(error, MESSAGE_ERRORS)


class KafkaEventPublisherImpl:
    """``ClassEventPublisherProtocol`` on aiokafka. Started lazily by the relay."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._producer is not None:
                return
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.KAFKA_BOOTSTRAP_SERVERS,
                client_id=self._settings.KAFKA_CLIENT_ID,
                acks="all",
                enable_idempotence=self._settings.KAFKA_ENABLE_IDEMPOTENCE,
                request_timeout_ms=self._settings.KAFKA_REQUEST_TIMEOUT_MS,
                max_request_size=self._settings.RELAY_MAX_MESSAGE_BYTES,
                linger_ms=0,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, messages: Sequence[OutboxMessage]) -> list[BaseException | None]:
        if self._producer is None:
            raise KafkaError("The Kafka producer is not started.")
        futures: list[asyncio.Future[object] | BaseException] = []
        spans: list[Span | None] = []  # a producer span per message while tracing is on
        results: list[BaseException | None] = []
        try:
            for message in messages:
                span, headers = start_publish_span(message)
                spans.append(span)
                try:
                    futures.append(
                        await self._producer.send(
                            message.topic, value=message.value, key=message.key, headers=headers
                        )
                    )
                except MESSAGE_ERRORS as error:
                    futures.append(error)
            for future, span in zip(futures, spans, strict=True):
                if isinstance(future, BaseException):
                    results.append(future)
                else:
                    try:
                        await future
                        results.append(None)
                    except KafkaError as error:
                        results.append(error)
                end_publish_span(span, results[-1])
        except BaseException as error:  # the broker went away mid-batch, or a cancellation
            for span in spans[len(results) :]:
                end_publish_span(span, error)
            raise
        return results

    async def check(self) -> None:
        """Raise unless the broker answers a metadata request (callers bound the wait)."""
        if self._producer is None:
            raise KafkaError("The Kafka producer is not connected yet.")
        await self._producer.client.fetch_all_metadata()
