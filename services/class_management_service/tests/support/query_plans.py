"""Plans of the repository's own statements, as PostgreSQL executes them.

The SQL and arguments are compiled exactly as the service's asyncpg dialect sends them and
run under ``EXPLAIN (ANALYZE, FORMAT JSON)`` in a rolled-back transaction, in a chosen
``plan_cache_mode`` (the statements are prepared: PostgreSQL may switch to a generic plan).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql

from services.class_management_service.implementations.postgres import classes, students
from services.class_management_service.implementations.postgres.sessions import SERVER_SETTINGS

PLAN_MODES = ("force_generic_plan", "force_custom_plan")


def compiled(statement: Executable, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """The SQL and positional arguments exactly as the service's asyncpg dialect sends them."""
    query = statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]
    names = query.positiontup or []
    defaults = query.params  # the statement's own literals (``version + 1``)
    return str(query), [values[name] if name in values else defaults[name] for name in names]


def rows_touched(plan: dict[str, Any], table: str) -> int:
    """Rows the plan's scans of ``table`` returned or removed, over all their loops."""
    touched = 0
    if plan.get("Relation Name") == table and "Scan" in plan.get("Node Type", ""):
        loops = plan.get("Actual Loops", 1)
        kept = plan.get("Actual Rows", 0)
        removed = plan.get("Rows Removed by Filter", 0) + plan.get(
            "Rows Removed by Index Recheck", 0
        )
        touched += (kept + removed) * loops
    for child in plan.get("Plans", ()):
        touched += rows_touched(child, table)
    return touched


async def plan_of(
    connection: asyncpg.Connection, statement: Executable, values: dict[str, Any], mode: str
) -> dict[str, Any]:
    """The executed plan of ``statement`` (EXPLAIN ANALYZE in the given plan mode), rolled
    back."""
    sql, args = compiled(statement, values)
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute(f"SET LOCAL plan_cache_mode = {mode}")
        for name, value in SERVER_SETTINGS.items():  # as the service's connections have them
            await connection.execute(f"SET LOCAL {name} = {value}")
        raw = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    finally:
        await transaction.rollback()  # EXPLAIN ANALYZE really ran the statement
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan


SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at")
# The index each sort of a list must be read in (forwards or backwards), per table.
SORT_INDEXES = {
    "classes": {
        "name": "ix_classes_owner_name",
        "created_at": "ix_classes_owner_created_at",
        "updated_at": "ix_classes_owner_updated_at",
    },
    "students": {
        "name": "ix_students_owner_name",
        "created_at": "ix_students_owner_created_at",
        "updated_at": "ix_students_owner_updated_at",
    },
}
SEARCH_INDEXES = {"classes": "ix_classes_name_search", "students": "ix_students_owner_search"}


def list_statement(table: str, search: bool, by_ids: bool, sort: str) -> Any:
    if table == "classes":
        page, _count = classes.class_list(False, search, by_ids, False, sort)  # type: ignore[arg-type]
    else:
        # A search as the repository makes it for a ``q`` with a trigram (all the tests').
        page, _count = students.student_list(False, search, by_ids, False, sort, search)  # type: ignore[arg-type]
    return page


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", ()) for node in nodes(child))]


def page_and_total(plan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paged statement's plan (``tables.paged``) as the page's part and the total's: the
    total is counted by an InitPlan of the top node, an aggregate."""
    totals = [
        child
        for child in plan.get("Plans", ())
        if child.get("Parent Relationship") == "InitPlan" and child["Node Type"] == "Aggregate"
    ]
    assert len(totals) == 1, f"no single total counted beside the page: {plan}"
    page = plan | {"Plans": [child for child in plan["Plans"] if child is not totals[0]]}
    return page, totals[0]


def scans_of(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return [node for node in nodes(plan) if node.get("Relation Name") == table]


def list_values(teacher: str, **values: Any) -> dict[str, Any]:
    """The bound values of a list statement; ``q_pattern`` (a substring: ``%...%``) also
    gives ``q``."""
    q = values["q_pattern"].strip("%") if values.get("q_pattern") else None
    defaults = {"limit": 20, "offset": 0, "q": q, "q_pattern": None, "ids": None}
    return {"user_id": teacher, **defaults} | values
