"""The repository's reads and changes around one student that are not the student itself:
its classes, its essays (listed, unlinked) and which student wrote an essay.

A mixin of ``PostgreSQLClassRepositoryImpl`` (its ``_db``), kept apart so that the
repository stays one screenful per aggregate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select

from services.class_management_service.domain import (
    ClassRecord,
    EssayLinkRecord,
    EssayWriterRecord,
    Page,
    RecordT,
    SortKey,
)
from services.class_management_service.implementations.postgres import classes as class_sql
from services.class_management_service.implementations.postgres import essays as essay_sql
from services.class_management_service.implementations.postgres import students as student_sql
from services.class_management_service.implementations.postgres.outbox import entries_params
from services.class_management_service.implementations.postgres.sessions import (
    Sessions,
    not_found,
)
from services.class_management_service.implementations.postgres.tables import (
    class_record,
    essay_link_record,
    essay_writer_record,
)
from services.class_management_service.protocols import AnnouncerProtocol


class StudentRelations:
    """A student's classes and essays, and an essay's writer (``ClassRepositoryProtocol``)."""

    _db: Sessions

    async def _student_page(
        self,
        operation: str,
        statements: tuple[Select[Any], Select[Any]],
        key: dict[str, Any],
        record: Callable[[Row[Any]], RecordT],
        limit: int,
        offset: int,
    ) -> Page[RecordT] | None:
        """A page about the student ``key`` names, or None when the student is not the
        user's: one statement; only an empty page asks whether the student is there."""
        page = await self._db.page(operation, statements, key, record, limit, offset)
        if not page.items and not await self._db.read(operation, student_sql.STUDENT_VERSION, key):
            not_found(operation)
            return None
        return page

    async def list_student_classes(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int, sort: SortKey
    ) -> Page[ClassRecord] | None:
        return await self._student_page(
            "list_student_classes",
            class_sql.class_list(False, False, False, False, sort, of_student=True),
            {"user_id": user_id, "student_id": student_id},
            class_record,
            limit,
            offset,
        )

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int
    ) -> Page[EssayLinkRecord] | None:
        return await self._student_page(
            "list_student_essays",
            essay_sql.STUDENT_ESSAYS,
            {"user_id": user_id, "student_id": student_id},
            essay_link_record,
            limit,
            offset,
        )

    async def unlink_essay(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
        announce: AnnouncerProtocol,
    ) -> bool:
        params = {
            "user_id": user_id,
            "student_id": student_id,
            "essay_id": essay_id,
            # Written only if this statement removes the link.
            **entries_params([announce.essay_unlinked(essay_id, student_id, datetime.now(UTC))]),
        }
        async with self._db.session("unlink_essay", transaction=False) as session:
            removed = (await session.execute(essay_sql.UNLINK_ESSAY, params)).first()
        if removed is None:
            not_found("unlink_essay")
        return removed is not None

    async def get_essay_writer(
        self, *, user_id: str, essay_id: uuid.UUID
    ) -> EssayWriterRecord | None:
        key = {"user_id": user_id, "essay_id": essay_id}
        rows = await self._db.read("get_essay_writer", essay_sql.ESSAY_WRITER, key)
        if not rows:
            not_found("get_essay_writer")
            return None
        return essay_writer_record(rows[0])
