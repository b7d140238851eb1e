"""Sessions of the repository, and database errors translated once.

One ``AsyncSession`` per operation, opened on the one engine (and its pool) and closed
before the operation returns; never one shared or injected. Reads run on AUTOCOMMIT
sessions (no BEGIN/COMMIT: one statement is atomic on its own); a transaction commits when
its block succeeds and rolls back on any exception.

Every operation is timed (``cms_db_operation_duration_seconds``). What it ends in is
counted apart: a database failure (unreachable, or an unexpected error) in
``cms_db_operation_errors_total``; an ordinary domain outcome (no row matched, a stale
version, a duplicate e-mail...) in ``cms_db_operation_outcomes_total``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

from sqlalchemy import Executable, Row, Select, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.class_management_service import metrics
from services.class_management_service.domain import Page, RecordT
from services.class_management_service.exceptions import (
    ClassManagementError,
    ClassNotFoundError,
    DependencyUnavailableError,
    StudentAlreadyExistsError,
    VersionConflictError,
)

# Settings of every connection of the service's pool (di.build_engine). No parallel plans:
# each statement reads a few of one teacher's rows by index in a millisecond or two, less
# than starting a worker takes; a generic plan that guessed a search at thousands of rows
# started two per statement (18 ms against 1.3 ms on the bench's big database).
SERVER_SETTINGS: Mapping[str, str] = {"max_parallel_workers_per_gather": "0"}

# The outcome counted when an operation's row is not there (or not the user's).
NOT_FOUND = "NOT_FOUND"

# Errors that mean "the database cannot be reached or is restarting", not "bad request".
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return True
    # asyncpg reports a server that is shutting down or starting as these SQLSTATE classes.
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    return sqlstate.startswith(("08", "57P"))


def constraint_name(error: exc.IntegrityError) -> str:
    """The constraint an IntegrityError names (or its message), to tell which rule it broke."""
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)
    return name if isinstance(name, str) else str(error.orig)


def require_version(version: int, expected_version: int | None) -> None:
    """Raise VersionConflictError unless the row is at the version If-Match demands."""
    if expected_version is not None and version != expected_version:
        raise VersionConflictError(
            f"The resource is at version {version}, not {expected_version}.",
            current_version=version,
        )


def not_found(operation: str) -> None:
    """Count that ``operation`` found no row of the user's (the service decides the 404)."""
    metrics.DB_OPERATION_OUTCOMES.labels(operation, NOT_FOUND).inc()


class Sessions:
    """The repository's sessions on one engine: one per operation, timed and translated."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._transactional = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # Same pool; statements run without BEGIN/COMMIT (one statement is atomic alone).
        self._autocommit = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            autoflush=False,
        )

    @asynccontextmanager
    async def session(self, operation: str, *, transaction: bool) -> AsyncIterator[AsyncSession]:
        """A session of its own for one operation: in a transaction, or AUTOCOMMIT.

        Database outages become DependencyUnavailableError (a 503). A domain error raised in
        the block is an outcome, counted as its ``code``; any other error a failure.
        """
        started = perf_counter()
        try:
            if transaction:
                async with self._transactional() as session, session.begin():
                    yield session
            else:
                async with self._autocommit() as session:
                    yield session
        except ClassManagementError as error:
            metrics.DB_OPERATION_OUTCOMES.labels(operation, error.code).inc()
            raise
        except Exception as error:
            metrics.DB_OPERATION_ERRORS.labels(operation, type(error).__name__).inc()
            if is_database_unavailable(error):
                raise DependencyUnavailableError("The database is unavailable.") from error
            raise
        finally:
            metrics.DB_OPERATION_DURATION.labels(operation).observe(perf_counter() - started)

    async def read(
        self, operation: str, statement: Executable, params: Mapping[str, Any]
    ) -> list[Row[Any]]:
        """One read-only statement. A pooled session that the database dropped (a
        PostgreSQL restart) is detected by the statement failing; such a read is tried once
        more on a new session, as reads are safe to repeat."""
        for attempt in (1, 2):
            try:
                async with self.session(operation, transaction=False) as session:
                    return list(await session.execute(statement, params))
            except DependencyUnavailableError as error:
                cause = error.__cause__
                stale = isinstance(cause, exc.DBAPIError) and cause.connection_invalidated
                if attempt == 2 or not stale:
                    raise
        raise AssertionError("unreachable")

    async def page(
        self,
        operation: str,
        statements: tuple[Select[Any], Select[Any]],
        params: dict[str, Any],
        record: Callable[[Row[Any]], RecordT],
        limit: int,
        offset: int,
    ) -> Page[RecordT]:
        """A page from ``paged`` statements: the total comes with the rows, or is counted
        apart only when a page past the end is empty."""
        page, count = statements
        rows = await self.read(operation, page, {**params, "limit": limit, "offset": offset})
        if rows:
            total = rows[0].total
        elif offset:
            total = (await self.read(operation, count, params))[0][0]
        else:
            total = 0
        return Page([record(row) for row in rows], total, limit, offset)


def student_integrity_error(error: exc.IntegrityError, email: str | None) -> ClassManagementError:
    """The domain error an IntegrityError of a student's write means; re-raises any other."""
    constraint = constraint_name(error)
    if "uq_students_owner_email" in constraint:
        if email is None:  # an import: a student with one of its e-mails was just created
            return StudentAlreadyExistsError("A student with one of these emails was just created.")
        return StudentAlreadyExistsError(f"A student with email {email} already exists.")
    if "class_id" in constraint:
        return ClassNotFoundError("A class was deleted while the student was saved.")
    raise error
