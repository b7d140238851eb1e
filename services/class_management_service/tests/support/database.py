"""What the tests read from the database directly: the outbox, and digests of every table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common_core.events import CHANGE_TOPICS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Every table's content, in a stable order. The outbox is seen through its id sequence,
# which every event ever written advanced: the relay deletes rows once they are published
# (and retries change them), but a request must not add events.
_TABLE_DIGESTS = {
    "classes": "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM classes t",
    "students": "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM students t",
    "class_student_association": (
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.class_id, t.student_id), ''))"
        " FROM class_student_association t"
    ),
    "essay_student_associations": (
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))"
        " FROM essay_student_associations t"
    ),
    "event_outbox": "SELECT last_value || ':' || is_called FROM event_outbox_id_seq",
}


async def database_digest(engine: AsyncEngine) -> dict[str, str]:
    """A digest per table: equal digests mean equal content."""
    async with engine.connect() as connection:
        return {
            table: str(await connection.scalar(text(sql))) for table, sql in _TABLE_DIGESTS.items()
        }


async def outbox_rows(engine: AsyncEngine, where: str = "true", **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT id, event_id, event_type, topic, aggregate_id, payload, attempts,"
                " last_error, created_at, next_attempt_at, parked_at"
                f" FROM event_outbox WHERE {where} ORDER BY id"
            ),
            params,
        )
        return list(result)


async def pending_outbox(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(
                text("SELECT count(*) FROM event_outbox WHERE parked_at IS NULL")
            )
        )


async def outbox_count(
    engine: AsyncEngine, aggregate_id: str | None = None, *, topics: Sequence[str] = CHANGE_TOPICS
) -> int:
    """Rows of ``topics`` in the outbox (of one aggregate, if given). Every change of an
    aggregate writes exactly one row of the change topics (the default) and one of the state
    topics (``topics=STATE_TOPICS``).

    Only a count of what requests wrote with ``@pytest.mark.relay_off``: a relay deletes
    each row once published."""
    where = "topic = ANY(:topics)" + (" AND aggregate_id = :id" if aggregate_id else "")
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(f"SELECT count(*) FROM event_outbox WHERE {where}"),
            {"topics": list(topics), "id": aggregate_id},
        )
        return int(count)
