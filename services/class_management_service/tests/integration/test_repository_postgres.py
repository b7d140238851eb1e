"""The PostgreSQL repository on a real, migrated database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from common_core.events import (
    CHANGE_TOPICS,
    CLASS_DELETED_TOPIC,
    CLASS_UPDATED_TOPIC,
    STUDENT_DELETED_TOPIC,
    STUDENT_UPDATED_TOPIC,
)
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from common_core import CourseCode, PersonNameV1
from services.class_management_service.domain import (
    ClassRecord,
    ListFilters,
    OutboxEntry,
    StudentChanges,
    StudentRecord,
)
from services.class_management_service.exceptions import (
    ClassNotFoundError,
    DependencyUnavailableError,
    EssayAlreadyAssociatedError,
    StudentAlreadyExistsError,
    VersionConflictError,
)
from services.class_management_service.implementations.announcements import Announcements
from services.class_management_service.implementations.postgres.repository import (
    PostgreSQLClassRepositoryImpl,
)
from services.class_management_service.models_db import EssayStudentAssociation, EventOutbox
from services.class_management_service.tests.support.polling import wait_until

USER = "teacher-a"
OTHER = "teacher-b"


# The service's announcer: the repository writes the rows it builds.
ANNOUNCE = Announcements(USER, uuid.uuid4())


class BrokenAnnouncements(Announcements):
    def class_changed(self, before: Any, after: Any) -> list[OutboxEntry]:
        raise RuntimeError("event could not be built")


@pytest.fixture
def repo(engine: AsyncEngine) -> PostgreSQLClassRepositoryImpl:
    return PostgreSQLClassRepositoryImpl(engine)


async def outbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return list(
            await connection.execute(
                select(EventOutbox.aggregate_id, EventOutbox.topic, EventOutbox.payload)
                .where(EventOutbox.topic.in_(CHANGE_TOPICS))
                .order_by(EventOutbox.id)
            )
        )


def link_essay(
    repo: PostgreSQLClassRepositoryImpl, student_id: uuid.UUID, essay_id: uuid.UUID
) -> Any:
    return repo.associate_essay(
        user_id=USER, student_id=student_id, essay_id=essay_id, announce=ANNOUNCE
    )


async def new_class(
    repo: PostgreSQLClassRepositoryImpl,
    name: str = "9A",
    user: str = USER,
    code: CourseCode = CourseCode.ENG5,
) -> ClassRecord:
    return await repo.create_class(user_id=user, name=name, course_code=code, announce=ANNOUNCE)


async def new_student(
    repo: PostgreSQLClassRepositoryImpl,
    first: str = "Ada",
    email: str | None = None,
    class_ids: tuple[uuid.UUID, ...] = (),
    user: str = USER,
) -> StudentRecord:
    return await repo.create_student(
        user_id=user,
        name=PersonNameV1(first_name=first, last_name="Lovelace"),
        email=email,
        class_ids=class_ids,
        announce=ANNOUNCE,
    )


async def test_create_and_get_class_with_its_event_in_one_transaction(repo, engine) -> None:
    created = await new_class(repo, "9A", code=CourseCode.SV1)

    fetched = await repo.get_class(user_id=USER, class_id=created.id)
    assert fetched is not None
    assert (fetched.name, fetched.course_code, fetched.version, fetched.student_count) == (
        "9A",
        CourseCode.SV1,
        1,
        0,
    )
    assert fetched.created_at.tzinfo is not None
    (row,) = await outbox_rows(engine)
    assert row.aggregate_id == str(created.id)
    assert row.topic == "huleedu.class.created.v1"
    assert row.payload["data"]["class_id"] == str(created.id)


async def test_get_class_of_another_owner_is_none(repo) -> None:
    created = await new_class(repo)
    assert await repo.get_class(user_id=OTHER, class_id=created.id) is None
    assert await repo.get_class(user_id=USER, class_id=uuid.uuid4()) is None


async def test_failed_event_factory_rolls_the_change_back(repo, engine) -> None:
    broken = BrokenAnnouncements(USER, uuid.uuid4())
    with pytest.raises(RuntimeError):
        await repo.create_class(
            user_id=USER, name="9A", course_code=CourseCode.ENG5, announce=broken
        )
    page = await repo.list_classes(user_id=USER, limit=10, offset=0)
    assert page.total == 0
    assert await outbox_rows(engine) == []


async def test_list_classes_newest_first_with_filters_and_pagination(repo) -> None:
    names = [f"class-{i}" for i in range(5)]
    for i, name in enumerate(names):
        await new_class(repo, name, code=CourseCode.ENG5 if i % 2 == 0 else CourseCode.SV3)
    await new_class(repo, "foreign", user=OTHER)

    page = await repo.list_classes(user_id=USER, limit=2, offset=1)
    assert [c.name for c in page.items] == ["class-3", "class-2"]
    assert page.total == 5

    swedish = await repo.list_classes(user_id=USER, limit=10, offset=0, course_code=CourseCode.SV3)
    assert [c.name for c in swedish.items] == ["class-3", "class-1"]
    assert swedish.total == 2

    future = datetime.now(UTC) + timedelta(hours=1)
    assert (
        await repo.list_classes(
            user_id=USER, limit=10, offset=0, filters=ListFilters(updated_since=future)
        )
    ).total == 0


async def test_update_class_changes_only_given_fields_and_bumps_version(repo) -> None:
    created = await new_class(repo, "9A")
    updated = await repo.update_class(
        user_id=USER,
        class_id=created.id,
        name=None,
        course_code=CourseCode.ENG7,
        expected_version=1,
        announce=ANNOUNCE,
    )
    assert updated is not None
    assert (updated.name, updated.course_code, updated.version) == ("9A", CourseCode.ENG7, 2)
    assert updated.updated_at >= created.updated_at


async def test_update_class_with_stale_version_raises_and_changes_nothing(repo, engine) -> None:
    created = await new_class(repo)
    with pytest.raises(VersionConflictError):
        await repo.update_class(
            user_id=USER,
            class_id=created.id,
            name="x",
            course_code=None,
            expected_version=2,
            announce=ANNOUNCE,
        )
    assert (await repo.get_class(user_id=USER, class_id=created.id)).name == "9A"
    assert len(await outbox_rows(engine)) == 1


async def test_an_update_without_if_match_stores_the_version_it_produced(repo, engine) -> None:
    created = await new_class(repo, "9A")
    for name in ("9B", "9C"):
        await repo.update_class(
            user_id=USER,
            class_id=created.id,
            name=name,
            course_code=None,
            expected_version=None,  # the repository cannot know the version beforehand
            announce=ANNOUNCE,
        )
    rows = await outbox_rows(engine)
    assert [row.payload["data"]["version"] for row in rows] == [1, 2, 3]
    assert [row.topic for row in rows][1:] == ["huleedu.class.updated.v1"] * 2
    assert (await repo.get_class(user_id=USER, class_id=created.id)).version == 3


async def test_update_class_missing_or_foreign_is_none(repo) -> None:
    created = await new_class(repo)
    for user, class_id in ((OTHER, created.id), (USER, uuid.uuid4())):
        assert (
            await repo.update_class(
                user_id=user,
                class_id=class_id,
                name="x",
                course_code=None,
                expected_version=None,
                announce=ANNOUNCE,
            )
            is None
        )


async def test_delete_class_removes_memberships_but_keeps_students(repo, engine) -> None:
    klass = await new_class(repo)
    student = await new_student(repo, class_ids=(klass.id,))
    await repo.update_class(
        user_id=USER,
        class_id=klass.id,
        name="9B",
        course_code=None,
        expected_version=None,
        announce=ANNOUNCE,
    )

    assert await repo.delete_class(
        user_id=USER, class_id=klass.id, expected_version=None, announce=ANNOUNCE
    )
    assert await repo.get_class(user_id=USER, class_id=klass.id) is None
    remaining = await repo.get_student(user_id=USER, student_id=student.id)
    assert remaining is not None and remaining.class_ids == ()
    assert not await repo.delete_class(
        user_id=USER, class_id=klass.id, expected_version=None, announce=ANNOUNCE
    )
    # The delete's event carries the version one past the row's (3: created, joined by the
    # student, renamed), though the caller named none; the member's class_ids changed: its
    # own new version and event.
    *_, deleted, member = await outbox_rows(engine)
    assert (deleted.topic, deleted.payload["data"]["version"]) == (CLASS_DELETED_TOPIC, 4)
    assert deleted.payload["data"]["class_id"] == str(klass.id)
    assert (member.topic, member.aggregate_id) == (STUDENT_UPDATED_TOPIC, str(student.id))
    assert (member.payload["data"]["version"], member.payload["data"]["class_ids"]) == (2, [])


async def test_delete_with_a_stale_version_raises_and_deletes_nothing(repo, engine) -> None:
    klass = await new_class(repo)
    student = await new_student(repo, class_ids=(klass.id,))
    written = len(await outbox_rows(engine))
    with pytest.raises(VersionConflictError):  # at 2: the student joined it
        await repo.delete_class(
            user_id=USER, class_id=klass.id, expected_version=1, announce=ANNOUNCE
        )
    with pytest.raises(VersionConflictError):
        await repo.delete_student(
            user_id=USER,
            student_id=student.id,
            expected_version=7,
            announce=ANNOUNCE,
        )
    assert not await repo.delete_class(
        user_id=OTHER, class_id=klass.id, expected_version=1, announce=ANNOUNCE
    )
    assert await repo.get_class(user_id=USER, class_id=klass.id) is not None
    assert await repo.get_student(user_id=USER, student_id=student.id) is not None
    assert len(await outbox_rows(engine)) == written


async def test_student_create_with_memberships_roster_and_counts(repo) -> None:
    klass = await new_class(repo)
    zed = await new_student(repo, "Zed", class_ids=(klass.id, klass.id))
    amy = await new_student(repo, "Amy", class_ids=(klass.id,))
    await new_student(repo, "Outside")

    assert zed.class_ids == (klass.id,)
    roster = await repo.get_roster(user_id=USER, class_id=klass.id, limit=10, offset=0)
    assert roster is not None
    assert [s.first_name for s in roster.items] == ["Amy", "Zed"]
    assert roster.total == 2
    assert (await repo.get_class(user_id=USER, class_id=klass.id)).student_count == 2
    assert await repo.get_roster(user_id=OTHER, class_id=klass.id, limit=10, offset=0) is None
    in_class = await repo.list_students(user_id=USER, class_id=klass.id, limit=10, offset=0)
    assert {s.id for s in in_class.items} == {zed.id, amy.id}
    everyone = await repo.list_students(user_id=USER, class_id=None, limit=10, offset=0)
    assert everyone.total == 3


async def test_duplicate_email_for_same_owner_is_rejected_and_rolled_back(repo, engine) -> None:
    await new_student(repo, email="ada@example.com")
    with pytest.raises(StudentAlreadyExistsError):
        await new_student(repo, "Other", email="ada@example.com")
    # Another owner may use the same address.
    await new_student(repo, email="ada@example.com", user=OTHER)
    assert (await repo.list_students(user_id=USER, class_id=None, limit=10, offset=0)).total == 1
    assert len(await outbox_rows(engine)) == 2


async def test_student_in_foreign_class_is_rejected(repo) -> None:
    foreign = await new_class(repo, user=OTHER)
    with pytest.raises(ClassNotFoundError):
        await new_student(repo, class_ids=(foreign.id,))
    assert (await repo.list_students(user_id=USER, class_id=None, limit=10, offset=0)).total == 0


async def test_update_student_memberships_and_fields(repo) -> None:
    first = await new_class(repo, "A")
    second = await new_class(repo, "B")
    student = await new_student(repo, class_ids=(first.id,), email="ada@example.com")
    await new_student(repo, "Bob", email="bob@example.com")

    updated = await repo.update_student(
        user_id=USER,
        student_id=student.id,
        changes=StudentChanges(
            last_name="Byron", add_class_ids=(second.id, first.id), remove_class_ids=(first.id,)
        ),
        expected_version=1,
        announce=ANNOUNCE,
    )
    assert updated is not None
    assert (updated.first_name, updated.last_name, updated.version) == ("Ada", "Byron", 2)
    assert updated.class_ids == (second.id,)

    with pytest.raises(StudentAlreadyExistsError):
        await repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(email="bob@example.com"),
            expected_version=None,
            announce=ANNOUNCE,
        )
    with pytest.raises(VersionConflictError):
        await repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(first_name="X"),
            expected_version=1,
            announce=ANNOUNCE,
        )
    foreign = await new_class(repo, user=OTHER)
    with pytest.raises(ClassNotFoundError):
        await repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(add_class_ids=(foreign.id,)),
            expected_version=None,
            announce=ANNOUNCE,
        )
    final = await repo.get_student(user_id=USER, student_id=student.id)
    assert final is not None
    assert (final.email, final.version, final.class_ids) == ("ada@example.com", 2, (second.id,))


async def test_concurrent_membership_changes_each_see_the_ones_before(repo, engine) -> None:
    """Ten concurrent updates of one student, each removing another of its ten classes, and
    ten adding another: each waits for the student's lock, then sees every change committed
    before it. So the ten removals return ten different class counts, nothing is lost, and
    each update has its own version and event."""
    kept = [await new_class(repo, f"K{i}") for i in range(10)]
    added = [await new_class(repo, f"A{i}") for i in range(10)]
    student = await new_student(repo, class_ids=tuple(c.id for c in kept))

    def change(**ids: tuple[uuid.UUID, ...]) -> Any:
        return repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(**ids),
            expected_version=None,
            announce=ANNOUNCE,
        )

    results = await asyncio.gather(
        *(change(remove_class_ids=(c.id,)) for c in kept),
        *(change(add_class_ids=(c.id,)) for c in added),
    )
    assert sorted(r.version for r in results) == list(range(2, 22))
    for klass, result in zip(kept, results[:10], strict=True):
        assert klass.id not in result.class_ids
    for klass, result in zip(added, results[10:], strict=True):
        assert klass.id in result.class_ids
    # Each result is the state right after its own change: replaying the changes in version
    # order from the start gives every one of them.
    state = {c.id for c in kept}
    changes = [(c.id, False) for c in kept] + [(c.id, True) for c in added]
    for result, (class_id, add) in sorted(
        zip(results, changes, strict=True), key=lambda pair: pair[0].version
    ):
        state = state | {class_id} if add else state - {class_id}
        assert set(result.class_ids) == state
    final = await repo.get_student(user_id=USER, student_id=student.id)
    assert final is not None and set(final.class_ids) == {c.id for c in added}
    rows = await outbox_rows(engine)
    mine = [row for row in rows if row.aggregate_id == str(student.id)]
    assert sorted(row.payload["data"]["version"] for row in mine) == list(range(1, 22))
    # Each class it left or joined has one new version, counting it out or in.
    counts = {
        (row.aggregate_id, row.payload["data"]["version"]): row.payload["data"]["student_count"]
        for row in rows
        if row.topic == CLASS_UPDATED_TOPIC
    }
    assert counts == {
        **{(str(c.id), 2): 1 for c in kept},  # joined when the student was created
        **{(str(c.id), 3): 0 for c in kept},
        **{(str(c.id), 2): 1 for c in added},
    }


async def test_a_student_rename_is_one_change_with_its_event(repo, engine) -> None:
    student = await new_student(repo, email="ada@example.com")
    for last_name in ("Byron", "King"):
        updated = await repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(last_name=last_name, email="ADA@example.com"),
            expected_version=None,  # the event's version comes from the row
            announce=ANNOUNCE,
        )
        assert updated is not None
    assert (updated.first_name, updated.last_name, updated.version) == ("Ada", "King", 3)
    assert (updated.email, updated.class_ids) == ("ADA@example.com", ())
    rows = await outbox_rows(engine)
    assert [row.payload["data"]["version"] for row in rows] == [1, 2, 3]
    assert {row.topic for row in rows[1:]} == {STUDENT_UPDATED_TOPIC}

    unchanged = await repo.update_student(
        user_id=USER,
        student_id=student.id,
        changes=StudentChanges(),
        expected_version=3,
        announce=ANNOUNCE,
    )
    assert unchanged == updated
    with pytest.raises(VersionConflictError):
        await repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(),
            expected_version=2,
            announce=ANNOUNCE,
        )
    assert (
        await repo.update_student(
            user_id=OTHER,
            student_id=student.id,
            changes=StudentChanges(first_name="X"),
            expected_version=None,
            announce=ANNOUNCE,
        )
        is None
    )
    assert len(await outbox_rows(engine)) == 3


async def test_membership_primary_key_prevents_duplicates(engine, repo) -> None:
    klass = await new_class(repo)
    student = await new_student(repo, class_ids=(klass.id,))
    async with engine.connect() as connection:
        with pytest.raises(Exception, match="pk_class_student_association"):
            await connection.execute(
                text(
                    "INSERT INTO class_student_association (class_id, student_id) VALUES (:c, :s)"
                ),
                {"c": klass.id, "s": student.id},
            )


async def test_delete_student_and_essay_links(repo, engine) -> None:
    ada = await new_student(repo)
    bob = await new_student(repo, "Bob")
    essay = uuid.uuid4()

    link, created = await repo.associate_essay(
        user_id=USER, student_id=ada.id, essay_id=essay, announce=ANNOUNCE
    )
    assert created and link.student_id == ada.id
    again = await repo.associate_essay(
        user_id=USER, student_id=ada.id, essay_id=essay, announce=ANNOUNCE
    )
    assert again is not None and again[1] is False and again[0].created_at == link.created_at
    with pytest.raises(EssayAlreadyAssociatedError):
        await repo.associate_essay(
            user_id=USER, student_id=bob.id, essay_id=essay, announce=ANNOUNCE
        )
    assert (
        await repo.associate_essay(
            user_id=OTHER, student_id=ada.id, essay_id=essay, announce=ANNOUNCE
        )
        is None
    )
    essays = await repo.list_student_essays(user_id=USER, student_id=ada.id, limit=20, offset=0)
    assert essays is not None and [e.essay_id for e in essays.items] == [essay]

    assert await repo.delete_student(
        user_id=USER, student_id=ada.id, expected_version=1, announce=ANNOUNCE
    )
    assert await repo.get_student(user_id=USER, student_id=ada.id) is None
    assert (
        await repo.list_student_essays(user_id=USER, student_id=ada.id, limit=20, offset=0) is None
    )
    last = (await outbox_rows(engine))[-1]
    assert (last.topic, last.payload["data"]["version"]) == (STUDENT_DELETED_TOPIC, 2)


async def test_concurrent_links_of_one_essay_make_one_link(repo) -> None:
    ada = await new_student(repo)
    bob = await new_student(repo, "Bob")
    essay = uuid.uuid4()
    results = await asyncio.gather(*(link_essay(repo, ada.id, essay) for _ in range(20)))
    assert sorted(created for _, created in results) == [False] * 19 + [True]
    assert {(link.student_id, link.created_at) for link, _ in results} == {
        (ada.id, results[0][0].created_at)
    }

    other = uuid.uuid4()
    outcomes = await asyncio.gather(
        *(
            repo.associate_essay(
                user_id=USER, student_id=student.id, essay_id=other, announce=ANNOUNCE
            )
            for student in (ada, bob) * 5
        ),
        return_exceptions=True,
    )
    winners = {result[0].student_id for result in outcomes if isinstance(result, tuple)}
    assert len(winners) == 1
    losers = [result for result in outcomes if isinstance(result, Exception)]
    assert len(losers) == 5 and all(isinstance(e, EssayAlreadyAssociatedError) for e in losers)


async def _while_another_transaction_holds(
    database_url: str, statements: list[Any], operation: Awaitable[Any]
) -> Any:
    """Run ``statements`` in a transaction of its own, start ``operation`` meanwhile, wait
    until a statement of it waits for a lock (nothing else in this test's database can),
    commit that transaction: the operation's result."""
    others = create_async_engine(database_url, poolclass=NullPool)  # not the repository's pool
    try:
        async with others.connect() as blocker, others.connect() as watcher:
            for statement in statements:
                await blocker.execute(statement)
            running = asyncio.ensure_future(operation)
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )

            async def operation_waits() -> bool:
                assert not running.done(), f"it did not wait: {running.result()!r}"
                waits = bool((await watcher.execute(waiting)).scalar_one())
                # pg_stat_activity is read once per transaction: end it, or every later
                # poll sees the first one's activity.
                await watcher.rollback()
                return waits

            # Generous: on a busy machine the statement may take long to reach the lock.
            await wait_until(operation_waits, timeout=60, interval=0.02)
            await blocker.commit()
        return await asyncio.wait_for(running, 60)
    finally:
        await others.dispose()


async def _link_while_another_transaction_holds(
    repo: PostgreSQLClassRepositoryImpl,
    database_url: str,
    student_id: uuid.UUID,
    essay_id: uuid.UUID,
    statement: Any,
) -> Any:
    """Run ``statement`` in a transaction of its own, link the essay meanwhile, wait until
    the link statement waits for that transaction, commit it: the link's result."""
    linking = repo.associate_essay(
        user_id=USER, student_id=student_id, essay_id=essay_id, announce=ANNOUNCE
    )
    return await _while_another_transaction_holds(database_url, [statement], linking)


def _joins_meanwhile(class_id: uuid.UUID, student_id: uuid.UUID) -> list[Any]:
    """What adding the student to the class does, as another transaction would do it."""
    return [
        text("SELECT id FROM classes WHERE id = :class_id FOR UPDATE").bindparams(
            class_id=class_id
        ),
        text(
            "INSERT INTO class_student_association (class_id, student_id)"
            " VALUES (:class_id, :student_id)"
        ).bindparams(class_id=class_id, student_id=student_id),
        text("UPDATE classes SET version = version + 1 WHERE id = :class_id").bindparams(
            class_id=class_id
        ),
        text("UPDATE students SET version = version + 1 WHERE id = :student_id").bindparams(
            student_id=student_id
        ),
    ]


async def test_a_rename_that_meets_another_change_is_made_under_the_lock(
    repo, database_url, engine
) -> None:
    """A rename reads the class without a lock; a student joining it commits before the
    rename is written: the conditional write finds another version and writes nothing, and
    the rename is made again under the class's lock, from the class as it is now."""
    klass = await new_class(repo)
    ada = await new_student(repo, "Ada", class_ids=(klass.id,))  # the class is at version 2
    eva = await new_student(repo, "Eva")
    renaming = repo.update_class(
        user_id=USER,
        class_id=klass.id,
        name="9A Engelska",
        course_code=None,
        expected_version=None,
        announce=ANNOUNCE,
    )
    renamed = await _while_another_transaction_holds(
        database_url, _joins_meanwhile(klass.id, eva.id), renaming
    )

    assert (renamed.name, renamed.student_count, renamed.version) == ("9A Engelska", 2, 4)
    assert await repo.get_class(user_id=USER, class_id=klass.id) == renamed
    updates = [
        row.payload["data"] for row in await outbox_rows(engine) if row.topic == CLASS_UPDATED_TOPIC
    ]
    # Ada's joining (version 2), then the rename, once, at version 4 (3 was Eva's joining).
    assert [(u["version"], u["student_count"]) for u in updates] == [(2, 1), (4, 2)]
    assert updates[-1]["previous"] == {"class_designation": "9A"}
    assert ada.class_ids == (klass.id,)


async def test_a_student_joining_a_class_that_changed_meanwhile_joins_it_under_the_lock(
    repo, database_url, engine
) -> None:
    """A new student's classes are read without a lock; one of them gains another student
    before the new one is written: the write finds the class at another version, writes
    nothing (no student, no event), and the student is created again with the classes
    locked, from the class as it is now."""
    klass = await new_class(repo)
    eva = await new_student(repo, "Eva")
    creating = repo.create_student(
        user_id=USER,
        name=PersonNameV1(first_name="Ada", last_name="Lovelace"),
        email=None,
        class_ids=(klass.id,),
        announce=ANNOUNCE,
    )
    ada = await _while_another_transaction_holds(
        database_url, _joins_meanwhile(klass.id, eva.id), creating
    )

    assert ada.class_ids == (klass.id,)
    now = await repo.get_class(user_id=USER, class_id=klass.id)
    assert now is not None and (now.student_count, now.version) == (2, 3)
    rows = await outbox_rows(engine)
    updates = [row.payload["data"] for row in rows if row.topic == CLASS_UPDATED_TOPIC]
    assert [(u["version"], u["student_count"]) for u in updates] == [(3, 2)]
    created = [row for row in rows if row.aggregate_id == str(ada.id)]
    assert len(created) == 1  # one created event, from the second attempt only


async def test_a_lock_that_waited_reads_the_class_after_the_wait(
    repo, database_url, engine
) -> None:
    """A student leaving a class locks the class; another student joins it meanwhile and
    commits: the lock statement's row is the new one but its student_count the snapshot's,
    so the class is read again, and its new count is right."""
    klass = await new_class(repo)
    ada = await new_student(repo, "Ada", class_ids=(klass.id,))
    eva = await new_student(repo, "Eva")
    leaving = repo.update_student(
        user_id=USER,
        student_id=ada.id,
        changes=StudentChanges(remove_class_ids=(klass.id,)),
        expected_version=None,
        announce=ANNOUNCE,
    )
    left = await _while_another_transaction_holds(
        database_url, _joins_meanwhile(klass.id, eva.id), leaving
    )

    assert left.class_ids == ()
    now = await repo.get_class(user_id=USER, class_id=klass.id)
    assert now is not None and (now.student_count, now.version) == (1, 4)
    updates = [
        row.payload["data"] for row in await outbox_rows(engine) if row.topic == CLASS_UPDATED_TOPIC
    ]
    assert (updates[-1]["version"], updates[-1]["student_count"]) == (4, 1)
    assert updates[-1]["previous"] == {"student_count": 2}


async def test_a_link_committed_while_linking_is_found(repo, database_url) -> None:
    """The link statement waits for another transaction's link of the same essay; once that
    commits, the statement's own snapshot (taken before) shows no link, and the repository
    reads again instead of failing."""
    ada = await new_student(repo)
    essay = uuid.uuid4()
    other_link = insert(EssayStudentAssociation).values(
        id=uuid.uuid4(), essay_id=essay, student_id=ada.id, created_by_user_id=USER
    )
    link, created = await _link_while_another_transaction_holds(
        repo, database_url, ada.id, essay, other_link
    )
    assert (link.essay_id, link.student_id, created) == (essay, ada.id, False)


async def test_a_student_deleted_while_linking_is_not_found(repo, database_url) -> None:
    """The student is there in the link statement's snapshot, but deleted before its link
    is checked against it: the foreign key fails, and the student is not found."""
    ada = await new_student(repo)
    deletion = text("DELETE FROM students WHERE id = :id").bindparams(id=ada.id)
    linked = await _link_while_another_transaction_holds(
        repo, database_url, ada.id, uuid.uuid4(), deletion
    )
    assert linked is None


async def test_many_concurrent_operations_each_get_their_own_session(repo, engine) -> None:
    klass = await new_class(repo)

    async def work(i: int) -> None:
        student = await new_student(repo, f"S{i}", class_ids=(klass.id,))
        fetched = await repo.get_student(user_id=USER, student_id=student.id)
        assert fetched is not None and fetched.class_ids == (klass.id,)
        await repo.update_student(
            user_id=USER,
            student_id=student.id,
            changes=StudentChanges(last_name=f"L{i}"),
            expected_version=None,
            announce=ANNOUNCE,
        )
        await repo.get_roster(user_id=USER, class_id=klass.id, limit=5, offset=0)

    await asyncio.gather(*(work(i) for i in range(60)))

    roster = await repo.get_roster(user_id=USER, class_id=klass.id, limit=100, offset=0)
    assert roster is not None and roster.total == 60
    in_class = await repo.list_students(user_id=USER, class_id=klass.id, limit=100, offset=0)
    assert all(s.version == 2 for s in in_class.items)
    final = await repo.get_class(user_id=USER, class_id=klass.id)
    assert final is not None and (final.student_count, final.version) == (60, 61)
    # Created; 60 students created, each bumping the class, and renamed.
    assert len(await outbox_rows(engine)) == 1 + 60 * 3


async def test_concurrent_updates_with_same_version_let_exactly_one_through(repo) -> None:
    created = await new_class(repo)

    async def attempt(i: int) -> str:
        try:
            await repo.update_class(
                user_id=USER,
                class_id=created.id,
                name=f"name-{i}",
                course_code=None,
                expected_version=1,
                announce=ANNOUNCE,
            )
            return "ok"
        except VersionConflictError:
            return "conflict"

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert results.count("ok") == 1
    assert results.count("conflict") == 19
    assert (await repo.get_class(user_id=USER, class_id=created.id)).version == 2


async def test_unreachable_database_is_a_dependency_error() -> None:

    engine = create_async_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", connect_args={"timeout": 2}
    )
    try:
        with pytest.raises(DependencyUnavailableError):
            await PostgreSQLClassRepositoryImpl(engine).get_class(
                user_id=USER, class_id=uuid.uuid4()
            )
    finally:
        await engine.dispose()


async def _terminate_pooled_connections(engine: AsyncEngine, database_url: str) -> None:
    """Drop the server side of every idle pooled connection, as a PostgreSQL restart does."""
    admin = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = 'repository-under-test'"
                )
            )
    finally:
        await admin.dispose()


async def test_a_read_on_a_connection_the_database_dropped_is_retried(database_url: str) -> None:
    # No pre-ping (the default): the dropped connection is found by the read itself.
    engine = create_async_engine(
        database_url,
        pool_size=1,
        max_overflow=0,
        connect_args={"server_settings": {"application_name": "repository-under-test"}},
    )
    repo = PostgreSQLClassRepositoryImpl(engine)
    try:
        created = await new_class(repo, name="survives")
        await _terminate_pooled_connections(engine, database_url)
        assert await repo.get_class(user_id=USER, class_id=created.id) == created
        # A write is not repeated: on a dropped connection it is a 503, and the next one works.
        await _terminate_pooled_connections(engine, database_url)
        with pytest.raises(DependencyUnavailableError):
            await new_class(repo, name="lost")
        await new_class(repo, name="after")
        page = await repo.list_classes(user_id=USER, limit=10, offset=0)
        assert [record.name for record in page.items] == ["after", "survives"]
    finally:
        await engine.dispose()


async def test_pages_past_the_end_still_carry_the_total(repo) -> None:
    record = await new_class(repo)
    empty = await new_class(repo, name="empty")
    for number in range(3):
        await new_student(repo, first=f"s{number}", class_ids=(record.id,))

    students = await repo.list_students(user_id=USER, class_id=None, limit=2, offset=10)
    in_class = await repo.list_students(user_id=USER, class_id=record.id, limit=2, offset=3)
    roster = await repo.get_roster(user_id=USER, class_id=record.id, limit=2, offset=5)
    empty_roster = await repo.get_roster(user_id=USER, class_id=empty.id, limit=2, offset=0)

    assert (students.items, students.total) == ([], 3)
    assert (in_class.items, in_class.total) == ([], 3)
    assert roster is not None and (roster.items, roster.total) == ([], 3)
    assert empty_roster is not None and (empty_roster.items, empty_roster.total) == ([], 0)
    assert await repo.get_roster(user_id=OTHER, class_id=record.id, limit=2, offset=5) is None
