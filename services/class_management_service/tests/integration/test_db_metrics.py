"""The database metrics tell failures from outcomes, on the real PostgreSQL.

``cms_db_operation_errors_total`` counts only what the database failed (unreachable, an
unexpected error): an alert on it must not fire for a client who names a missing class.
Ordinary domain outcomes (404, 409, 412) are ``cms_db_operation_outcomes_total``.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from quart.typing import TestClientProtocol as Client
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from services.class_management_service.exceptions import DependencyUnavailableError
from services.class_management_service.implementations.postgres.repository import (
    PostgreSQLClassRepositoryImpl,
)
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    etag,
    problem_of,
    with_correlation,
)
from services.class_management_service.tests.support.service_process import free_port

ERRORS = "cms_db_operation_errors_total"
OUTCOMES = "cms_db_operation_outcomes_total"


def counted(metric: str, operation: str, **labels: str) -> float:
    """The sum of ``metric``'s samples for ``operation`` (and ``labels``), 0 when none."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == metric
        and sample.labels.get("operation") == operation
        and all(sample.labels.get(name) == value for name, value in labels.items())
    )


async def test_404_409_412_are_outcomes_not_database_errors(
    client: Client, headers: dict[str, str]
) -> None:
    klass = await create_class(client, headers)
    await create_student(client, headers, email="taken@example.com")
    cases = [
        ("get_class", "NOT_FOUND", 404, "get", f"/v1/classes/{uuid.uuid4()}", None, {}),
        ("update_class", "NOT_FOUND", 404, "put", f"/v1/classes/{uuid.uuid4()}", {"name": "x"}, {}),
        (
            "update_class",
            "PRECONDITION_FAILED",
            412,
            "put",
            f"/v1/classes/{klass['id']}",
            {"name": "x"},
            {"If-Match": etag(klass["version"] + 1)},
        ),
        (
            "create_student",
            "STUDENT_ALREADY_EXISTS",
            409,
            "post",
            "/v1/classes/students",
            {"person_name": {"first_name": "A", "last_name": "B"}, "email": "taken@example.com"},
            {},
        ),
    ]
    for operation, outcome, status, method, path, body, extra in cases:
        errors = counted(ERRORS, operation)
        outcomes = counted(OUTCOMES, operation, outcome=outcome)
        response = await getattr(client, method)(
            path, json=body, headers={**with_correlation(headers), **extra}
        )
        await problem_of(response, status)
        assert counted(OUTCOMES, operation, outcome=outcome) == outcomes + 1, (operation, outcome)
        assert counted(ERRORS, operation) == errors, f"{operation}: a {status} counted as an error"


async def test_an_unreachable_database_is_an_error_not_an_outcome() -> None:
    # Nothing listens on the port: every connection is refused.
    engine = create_async_engine(
        f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{free_port()}/none", poolclass=NullPool
    )
    repository = PostgreSQLClassRepositoryImpl(engine)
    errors, outcomes = counted(ERRORS, "get_student"), counted(OUTCOMES, "get_student")
    try:
        with pytest.raises(DependencyUnavailableError):
            await repository.get_student(user_id="u", student_id=uuid.uuid4())
    finally:
        await engine.dispose()
    # A read is tried twice only on a connection the database dropped, not on a refusal.
    assert counted(ERRORS, "get_student") == errors + 1
    assert counted(OUTCOMES, "get_student") == outcomes


async def test_an_unexpected_database_error_is_an_error(engine: AsyncEngine) -> None:
    """A database that lost a table (this test's own clone) fails the read: not an outcome."""
    repository = PostgreSQLClassRepositoryImpl(engine)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE essay_student_associations"))
    operation = "list_student_essays"
    errors = counted(ERRORS, operation, error="ProgrammingError")
    outcomes = counted(OUTCOMES, operation)
    with pytest.raises(ProgrammingError, match="essay_student_associations"):
        await repository.list_student_essays(
            user_id="u", student_id=uuid.uuid4(), limit=20, offset=0
        )
    assert counted(ERRORS, operation, error="ProgrammingError") == errors + 1
    assert counted(OUTCOMES, operation) == outcomes
