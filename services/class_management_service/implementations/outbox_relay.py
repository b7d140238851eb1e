"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One pass claims pending rows with ``FOR UPDATE SKIP LOCKED`` (so replicas split the work),
skips any row whose aggregate still has an earlier pending row held elsewhere (so one
aggregate's events keep their order), sends the batch, and deletes the rows the broker
acknowledged, in the same transaction that locked them. A crash before that commit leaves
the rows pending: they are sent again with the same event_id. The table holds only what is
still to be sent (and parked rows): a published event lives on in Kafka.

Within a batch, an aggregate's next event is sent only after the broker acknowledged its
previous one (see ``_publish_in_order``): its events live on different topics, which the
broker does not order among each other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.class_management_service import metrics
from services.class_management_service.config import Settings, database_address
from services.class_management_service.domain import OutboxMessage
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    is_message_error,
)
from services.class_management_service.implementations.postgres.outbox import (
    CLAIM_PENDING,
    DELETE_PUBLISHED,
    PENDING_STATS,
    RECORD_FAILURE,
    outbox_message,
)
from services.class_management_service.protocols import ClassEventPublisherProtocol

logger = logging.getLogger(__name__)


class BrokerUnavailableError(Exception):
    """The broker did not take a batch; the rows stay pending."""


@dataclass(frozen=True, slots=True)
class _Outage:
    kind: str  # "broker" or "relay" (the database, or anything else), as in OUTBOX_FAILED
    since: float


class _NotSent:
    """Marks a row held back in this pass because an earlier event of its aggregate failed."""


NOT_SENT: Final = _NotSent()
PublishResult = BaseException | None | _NotSent


class OutboxRelay:
    """Runs in every replica; wakes on a local event (set through Redis) or by polling."""

    def __init__(
        self, engine: AsyncEngine, publisher: ClassEventPublisherProtocol, settings: Settings
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    # -- control --------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.0
        outage: _Outage | None = None
        while True:
            try:
                await self._publisher.start()
                relayed = claimed = await self.relay_once()
                while claimed >= self._settings.RELAY_BATCH_SIZE:  # more may be waiting
                    claimed = await self.relay_once()
                    relayed += claimed
                backoff = 0.0
                self.last_error = None
                if outage is not None:
                    self._log_end(outage, relayed)
                    outage = None
            except asyncio.CancelledError:
                raise
            except Exception as error:
                backoff = min(
                    max(backoff * 2, self._settings.RELAY_POLL_INTERVAL_SECONDS / 4),
                    self._settings.RELAY_MAX_BACKOFF_SECONDS,
                )
                kind = "broker" if _is_broker(error) else "relay"
                if outage is None or outage.kind != kind:
                    # One WARNING when an outage starts, one INFO when it ends: not a line
                    # per retry (aiokafka's own per-retry errors are silenced, logging_setup).
                    outage = _Outage(kind, time.monotonic())
                    logger.warning("%s: %s", self._outage_subject(kind), error)
                self.last_error = f"{type(error).__name__}: {error}"
                metrics.OUTBOX_FAILED.labels(kind).inc()
            timeout = backoff or self._settings.RELAY_POLL_INTERVAL_SECONDS
            try:
                # While backing off, a wake-up must not turn the back-off into a busy loop.
                if backoff:
                    await asyncio.sleep(backoff)
                else:
                    await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()

    def _outage_subject(self, kind: str) -> str:
        if kind == "broker":
            return (
                f"Kafka at {self._settings.KAFKA_BOOTSTRAP_SERVERS} is unavailable; events"
                " wait in the outbox until it is back"
            )
        return (
            f"Outbox relay paused (PostgreSQL at {database_address(self._settings.DATABASE_URL)})"
        )

    def _log_end(self, outage: _Outage, relayed: int) -> None:
        lasted = time.monotonic() - outage.since
        what = "Kafka is available again" if outage.kind == "broker" else "Outbox relay resumed"
        logger.info(
            "%s after %.1f s; %d events that waited were published",
            what,
            lasted,
            relayed,
            extra={"outage_seconds": round(lasted, 1), "events_waited": relayed},
        )

    async def relay_once(self) -> int:
        """One pass; returns how many rows it claimed. Raises BrokerUnavailableError."""
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(CLAIM_PENDING, {"limit": self._settings.RELAY_BATCH_SIZE})
            ).all()
            if not rows:
                return 0
            messages = [outbox_message(row) for row in rows]
            results = await self._publish_in_order(messages)
            await self._after_publish(messages)
            broker_errors = await self._record(connection, rows, results)
        if broker_errors:
            raise BrokerUnavailableError(
                f"{len(broker_errors)} of {len(rows)} events not acknowledged: {broker_errors[0]}"
            )
        return len(rows)

    async def _publish_in_order(self, messages: list[OutboxMessage]) -> list[PublishResult]:
        """Publish a batch so that no event of an aggregate overtakes an earlier one.

        A class's ``created`` and ``updated`` go to different topics, and a broker can take
        part of a batch (one topic's partition without a leader, one request timing out).
        Sent all at once, ``updated`` could then be acknowledged while ``created`` failed and
        went out in a later pass: consumers would see a class updated before it exists.
        So the batch goes out in waves: wave n holds each aggregate's n-th event in the batch,
        and an aggregate whose event failed sends nothing more in this pass (its later rows
        stay pending, untouched). Most batches hold one event per aggregate: one wave.
        """
        results: list[PublishResult] = [NOT_SENT] * len(messages)
        waves: list[list[int]] = []
        seen: Counter[bytes] = Counter()
        for index, message in enumerate(messages):
            depth = seen[message.key]
            seen[message.key] += 1
            if depth == len(waves):
                waves.append([])
            waves[depth].append(index)
        failed: set[bytes] = set()
        for wave in waves:
            sending = [index for index in wave if messages[index].key not in failed]
            if not sending:
                break  # every later wave belongs to aggregates that already failed
            outcomes = await self._publisher.publish([messages[index] for index in sending])
            for index, outcome in zip(sending, outcomes, strict=True):
                results[index] = outcome
                if outcome is not None:
                    failed.add(messages[index].key)
        return results

    async def _after_publish(self, messages: list[OutboxMessage]) -> None:
        """Hook between the broker's acknowledgement and the commit (used by crash tests)."""

    async def _record(
        self, connection: AsyncConnection, rows: Sequence[Any], results: Sequence[PublishResult]
    ) -> list[BaseException]:
        published: list[int] = []
        broker_errors: list[BaseException] = []
        now = datetime.now(UTC)
        for row, error in zip(rows, results, strict=True):
            if isinstance(error, _NotSent):
                continue  # held back behind its aggregate's failed event: stays pending
            if error is None:
                published.append(row.id)
                metrics.EVENT_DELIVERY_LAG.observe(max((now - row.created_at).total_seconds(), 0))
            elif is_message_error(error):
                await self._record_message_error(connection, row, error)
            else:
                broker_errors.append(error)
        if published:
            await connection.execute(DELETE_PUBLISHED, {"ids": published})
            metrics.OUTBOX_PUBLISHED.inc(len(published))
        return broker_errors

    async def _record_message_error(
        self, connection: AsyncConnection, row: Any, error: BaseException
    ) -> None:
        attempts = row.attempts + 1
        park = attempts >= self._settings.RELAY_MAX_ATTEMPTS
        delay = min(2 ** (attempts - 1), self._settings.RELAY_MAX_BACKOFF_SECONDS)
        await connection.execute(
            RECORD_FAILURE,
            {
                "row_id": row.id,
                "error": f"{type(error).__name__}: {error}"[:2000],
                "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
                "park": park,
            },
        )
        metrics.OUTBOX_FAILED.labels("message").inc()
        if park:
            metrics.OUTBOX_PARKED.inc()
            logger.error(
                "Outbox event %s parked after %d attempts: %s", row.event_id, attempts, error
            )

    async def pending_stats(self) -> tuple[int, float]:
        async with self._engine.connect() as connection:
            row = (await connection.execute(PENDING_STATS)).one()
        return int(row.depth), float(row.oldest_age)


def _is_broker(error: BaseException) -> bool:
    # Not OSError: a refused database connection is one too (asyncpg raises it unwrapped),
    # while aiokafka wraps its connection errors in KafkaError.
    return isinstance(error, BrokerUnavailableError | KafkaError)
