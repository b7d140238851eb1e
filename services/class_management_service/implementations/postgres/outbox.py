"""The outbox row, defined once: how a change writes its event, and how the relay reads,
deletes and retries it.

Write side: a change's statement INSERTs its rows (``WRITE_ENTRIES``: its event and its
state record) in the same statement, so the change and its rows commit together. Read side:
the relay claims rows (``CLAIM_PENDING``), deletes the published ones
(``DELETE_PUBLISHED``), records message errors (``RECORD_FAILURE``) and reports the backlog
(``PENDING_STATS``); a claimed row becomes an ``OutboxMessage`` in ``outbox_message``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Boolean,
    Insert,
    Integer,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    case,
    column,
    exists,
    extract,
    func,
    insert,
    literal_column,
    null,
    select,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.class_management_service.domain import OutboxEntry, OutboxMessage
from services.class_management_service.implementations.postgres.tables import (
    UUID_TYPE,
    outbox,
)
from services.class_management_service.tracing import trace_headers

# The columns a change writes.
EVENT_COLUMNS = ("event_id", "event_type", "topic", "aggregate_id", "payload")
# A change's outbox rows, bound as one array per column (``entries_params``) and unnested in
# order, so that however many rows a change writes, they are one part of its statement.
_ENTRIES = (
    func.unnest(
        bindparam("entry_event_ids", type_=ARRAY(UUID_TYPE)),
        bindparam("entry_event_types", type_=ARRAY(String)),
        bindparam("entry_topics", type_=ARRAY(String)),
        bindparam("entry_aggregate_ids", type_=ARRAY(String)),
        bindparam("entry_payloads", type_=ARRAY(Text)),
    )
    .table_valued(
        column("event_id", UUID_TYPE),
        column("event_type", String),
        column("topic", String),
        column("aggregate_id", String),
        column("payload", Text),
    )
    .render_derived(name="entries")
)
# INSERT of a change's rows (a tombstone's payload is the JSON null: the column stays NOT
# NULL and the relay sends a null value).
WRITE_ENTRIES = insert(outbox).from_select(
    EVENT_COLUMNS,
    select(
        *(_ENTRIES.c[name] for name in EVENT_COLUMNS[:-1]),
        sql_cast(_ENTRIES.c.payload, JSONB),
    ),
)


def entries_params(entries: Sequence[OutboxEntry]) -> dict[str, Any]:
    """The bound arrays of ``WRITE_ENTRIES`` for ``entries``, in order."""
    return {
        "entry_event_ids": [entry.event_id for entry in entries],
        "entry_event_types": [entry.event_type for entry in entries],
        "entry_topics": [entry.topic for entry in entries],
        "entry_aggregate_ids": [entry.aggregate_id for entry in entries],
        "entry_payloads": [
            entry.payload.model_dump_json() if entry.payload is not None else "null"
            for entry in entries
        ],
    }


def with_entries(statement: Select[Any]) -> Select[Any]:
    """``statement`` writing the bound outbox rows too (a data-modifying CTE always runs)."""
    return statement.add_cte(WRITE_ENTRIES.cte("entries_written"))


def with_entries_if(changed: CTE, *ctes: CTE) -> Select[Any]:
    """The ids ``changed`` (a conditional change's CTE) returns, with ``ctes`` and the bound
    outbox rows; the rows are written only when it changed a row (the other CTEs check it
    themselves: ``when_changed``)."""
    written = insert(outbox).from_select(
        EVENT_COLUMNS,
        select(
            *(_ENTRIES.c[name] for name in EVENT_COLUMNS[:-1]),
            sql_cast(_ENTRIES.c.payload, JSONB),
        ).where(when_changed(changed)),
    )
    return select(changed.c.id).add_cte(written.cte("entries_written"), *ctes)


def when_changed(changed: CTE) -> Any:
    """The condition that ``changed`` returned a row: the parts of a conditional change's
    statement happen only if its row was at the version the change was computed from."""
    return select(changed.c.id).exists()


def delete_with_entries(table: Table, id_param: str, *ctes: CTE) -> Select[Any]:
    """DELETE of ``table``'s row whose id is bound as ``id_param``, with ``ctes`` (the other
    aggregates it changes) and the bound outbox rows, in one statement."""
    deleted = (
        table.delete()
        .where(table.c.id == bindparam(id_param, type_=UUID_TYPE))
        .returning(table.c.id)
        .cte("deleted")
    )
    return with_entries(select(deleted.c.id)).add_cte(*ctes)


def entry_after(cte: CTE) -> Insert:
    """INSERT of the one bound row ``entry_*[1]`` once per row of ``cte`` (none when the
    change did nothing)."""
    return insert(outbox).from_select(
        EVENT_COLUMNS,
        select(
            *(_ENTRIES.c[name] for name in EVENT_COLUMNS[:-1]),
            sql_cast(_ENTRIES.c.payload, JSONB),
        )
        .select_from(cte)
        .join(_ENTRIES, true()),  # every row of cte with the bound row: a cross join
    )


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
    payload = row.payload  # None: a tombstone (the JSON null), sent as a null value
    return OutboxMessage(
        id=row.id,
        event_id=row.event_id,
        topic=row.topic,
        key=row.aggregate_id.encode(),
        value=(
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            if payload is not None
            else None
        ),
        headers=[
            ("event_type", row.event_type.encode()),
            ("event_id", str(row.event_id).encode()),
            ("correlation_id", str((payload or {}).get("correlation_id", "")).encode()),
            *trace_headers((payload or {}).get("metadata")),
        ],
        attempts=row.attempts,
    )
