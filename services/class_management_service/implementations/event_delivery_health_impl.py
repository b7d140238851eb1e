"""``EventDeliveryHealthProtocol`` over the Kafka publisher and the outbox relay."""

from __future__ import annotations

from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay


class EventDeliveryHealthImpl:
    def __init__(self, relay: OutboxRelay, publisher: KafkaEventPublisherImpl) -> None:
        self._relay = relay
        self._publisher = publisher

    async def check_broker(self) -> None:
        await self._publisher.check()

    def relay_problem(self) -> str | None:
        if not self._relay.running:
            return "the outbox relay is not running"
        return self._relay.last_error

    async def outbox_backlog(self) -> tuple[int, float]:
        return await self._relay.pending_stats()
