"""The envelope every event travels in.

Serialise with ``envelope.model_dump_json().encode()``; parse with
:func:`common_core.events.parsing.parse_event_message`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar, cast
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from common_core.events.fields import UtcDatetime
from common_core.events.topics import TOPIC_BY_EVENT, topic_for

__all__ = ["EventEnvelope", "make_envelope"]

T = TypeVar("T")
EventT = TypeVar("EventT", bound=BaseModel)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventEnvelope(BaseModel, Generic[T]):
    """Metadata around one event (``data``). ``event_type`` is the topic name of ``data``.

    Unknown fields (a newer producer's, within v1) are ignored when parsing.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    event_type: Annotated[str, StringConstraints(min_length=1)]
    event_timestamp: UtcDatetime = Field(default_factory=_utc_now)
    source_service: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    schema_version: Literal[1] = 1
    correlation_id: UUID = Field(default_factory=uuid4)
    data: T
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _event_type_matches_data(self) -> EventEnvelope[T]:
        if not isinstance(self.data, BaseModel):
            return self
        expected = TOPIC_BY_EVENT.get(type(self.data))
        if expected is not None and expected != self.event_type:
            raise ValueError(
                f"event_type {self.event_type!r} does not match the data, "
                f"a {type(self.data).__name__} whose topic is {expected!r}"
            )
        return self


@cache
def envelope_class(event_cls: type[EventT]) -> type[EventEnvelope[EventT]]:
    """``EventEnvelope[event_cls]``, built once and kept for the life of the process.

    pydantic keeps parametrised generic models only weakly: once the cyclic garbage
    collector has taken ``EventEnvelope[SomeEvent]``, the next use builds the class and its
    validator again, about a millisecond each time (under load, several times a second).
    """
    return cast("type[EventEnvelope[EventT]]", EventEnvelope[event_cls])  # type: ignore[valid-type]


def make_envelope(
    data: EventT,
    *,
    source_service: str,
    correlation_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
    event_id: UUID | None = None,
) -> EventEnvelope[EventT]:
    """Wrap a registered event in an envelope whose ``event_type`` is the event's topic.

    ``event_id`` and ``correlation_id`` are new random UUIDs unless given; the timestamp is now.
    Raises :class:`~common_core.events.topics.UnknownEventError` for an unregistered event.
    """
    fields: dict[str, Any] = {
        "event_type": topic_for(data),
        "source_service": source_service,
        "data": data,
        "metadata": metadata,
    }
    if correlation_id is not None:
        fields["correlation_id"] = correlation_id
    if event_id is not None:
        fields["event_id"] = event_id
    # Parametrise with the runtime class so the result equals what parse_event_message returns.
    return envelope_class(type(data))(**fields)
