"""The outbox row, defined once: how a change writes its event, and how the relay reads,
deletes and retries it.

Write side: a change's statement INSERTs its event from ``EVENT_COLUMNS`` (``event_after``)
in the same statement, so the change and its event commit together. Read side: the relay
claims rows (``CLAIM_PENDING``), deletes the published ones (``DELETE_PUBLISHED``), records
message errors (``RECORD_FAILURE``) and reports the backlog (``PENDING_STATS``); a claimed row
becomes an ``OutboxMessage`` in ``outbox_message``.
"""

from __future__ import annotations

import json
from typing import Any

from common_core.events import EventEnvelope, topic_for
from sqlalchemy import (
    CTE,
    BigInteger,
    Boolean,
    ColumnClause,
    Insert,
    Integer,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    case,
    exists,
    extract,
    func,
    insert,
    literal_column,
    null,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.class_management_service.domain import OutboxMessage, VersionedEventFactory
from services.class_management_service.implementations.postgres.tables import (
    UUID_TYPE,
    guarded,
    outbox,
)
from services.class_management_service.tracing import trace_headers

# The columns a change writes; their values are bound, the payload as JSON text serialised
# by pydantic (``event_params``).
EVENT_COLUMNS = ("event_id", "event_type", "topic", "aggregate_id", "payload")
_EVENT_VALUES = (
    bindparam("event_id", type_=UUID_TYPE),
    bindparam("event_type", type_=String),
    bindparam("topic", type_=String),
    bindparam("aggregate_id", type_=String),
    sql_cast(bindparam("payload", type_=Text), JSONB),
)
# Where an event's payload holds the aggregate's version (EventEnvelope.data.version).
DATA_VERSION_PATH: ColumnClause[Any] = literal_column("'{data,version}'::text[]")


def event_params(envelope: EventEnvelope[Any]) -> dict[str, Any]:
    """The bound values of ``EVENT_COLUMNS`` for one event."""
    return {
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        "topic": topic_for(envelope.data),
        "aggregate_id": envelope.data.aggregate_id,
        "payload": envelope.model_dump_json(),
    }


def event_before(event: VersionedEventFactory, expected_version: int | None) -> dict[str, Any]:
    """The event of a guarded change (update or delete), built before its statement runs:
    right already when If-Match named the version; else the statement's ``with_version``
    sets the version the change produced."""
    return event_params(event((expected_version or 0) + 1))


def event_after(cte: CTE, payload: Any = _EVENT_VALUES[-1]) -> Insert:
    """INSERT of the event, one row per row of ``cte`` (so none when the change did nothing);
    ``payload`` replaces the bound payload (an expression over ``cte``'s columns)."""
    values = (*_EVENT_VALUES[:-1], payload)
    return insert(outbox).from_select(EVENT_COLUMNS, select(*values).select_from(cte))


def with_version(version: Any) -> Any:
    """The bound event payload with ``data.version`` set to ``version`` (a SQL expression)."""
    return func.jsonb_set(_EVENT_VALUES[-1], DATA_VERSION_PATH, func.to_jsonb(version))


def delete_with_event(table: Table, checks_version: bool) -> Select[Any]:
    """Delete an owned row (at the expected version) and write the event of its end, in one
    statement; returns the version the row had, or no row when nothing matched.

    As for updates, the event is bound already built; the statement stores it with
    ``data.version`` one past the version of the row it deleted.
    """
    deleted = (table.delete().where(guarded(table, checks_version)).returning(table.c.version)).cte(
        "deleted"
    )
    event = event_after(deleted, with_version(deleted.c.version + 1)).cte("event")
    return select(deleted.c.version).add_cte(event)


# -- the relay's side -------------------------------------------------------------------

_claimed = (
    select(outbox.c.id)
    .where(outbox.c.parked_at.is_(None), outbox.c.next_attempt_at <= func.now())
    .order_by(outbox.c.id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True)
    .cte("claimed")
)
_row = outbox.alias("o")
_earlier = outbox.alias("earlier")
# Up to ``limit`` due rows in id order, locked FOR UPDATE SKIP LOCKED (replicas split the
# work); a row is left out while an earlier unparked row of its aggregate is not among them
# (held by another relay, or not yet due), so one aggregate's events keep their order.
CLAIM_PENDING = (
    select(
        _row.c.id,
        *(_row.c[name] for name in EVENT_COLUMNS),
        _row.c.attempts,
        _row.c.created_at,
    )
    .join_from(_row, _claimed, _claimed.c.id == _row.c.id)
    .where(
        ~exists().where(
            _earlier.c.aggregate_id == _row.c.aggregate_id,
            _earlier.c.id < _row.c.id,
            _earlier.c.parked_at.is_(None),
            _earlier.c.id.not_in(select(_claimed.c.id)),
        )
    )
    .order_by(_row.c.id)
)
# The rows the broker acknowledged, by primary key. Deleted rather than marked: under load
# an UPDATE writes a new version of each row and its index entries beside the API's
# inserts, and cost PostgreSQL about 30 times as much (docs/performance.md).
DELETE_PUBLISHED = outbox.delete().where(
    outbox.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
)
# One more attempt of a row whose message the broker rejected: its error, when to try
# again, and parked (never claimed again) when ``park`` is true.
RECORD_FAILURE = (
    outbox.update()
    .where(outbox.c.id == bindparam("row_id", type_=BigInteger))
    .values(
        attempts=outbox.c.attempts + 1,
        last_error=bindparam("error", type_=Text),
        next_attempt_at=bindparam("next_attempt_at"),
        parked_at=case((bindparam("park", type_=Boolean), func.now()), else_=null()),
    )
)
# The backlog: unparked rows and the age in seconds of the oldest (0 when there is none).
PENDING_STATS = select(
    func.count().label("depth"),
    func.coalesce(
        extract("epoch", func.now() - func.min(outbox.c.created_at)), literal_column("0")
    ).label("oldest_age"),
).where(outbox.c.parked_at.is_(None))


def outbox_message(row: Any) -> OutboxMessage:
    """A claimed row as the relay sends it: key = aggregate id, value = the envelope's JSON."""
    payload = row.payload
    return OutboxMessage(
        id=row.id,
        event_id=row.event_id,
        topic=row.topic,
        key=row.aggregate_id.encode(),
        value=json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
        headers=[
            ("event_type", row.event_type.encode()),
            ("event_id", str(row.event_id).encode()),
            ("correlation_id", str(payload.get("correlation_id", "")).encode()),
            *trace_headers(payload.get("metadata")),
        ],
        attempts=row.attempts,
    )
