"""A platform-sized database for the benchmark, loaded through PostgreSQL's COPY.

``load_platform(database_url, shape)`` fills a migrated database with the teachers of a
whole platform (``shape``: by default 1,000,000 students and 100,000 classes over 20,000
teachers, about 25 students per class, each student in 1-3 classes) and one heavy teacher
with 60 classes and 10,000 students, then ANALYZEs it. The rows are generated from a fixed
seed (the same shape gives the same rows, ids included), with Swedish names (Å, Ä, Ö among
them) so that searches and name sorts meet realistic text.

The heavy teacher's rows come from a random stream of their own: a database with only the
heavy teacher (``PlatformShape.heavy_only()``) holds exactly the heavy teacher of the big one.
Each teacher's rows are spread over the tables in creation order, not stored together, as
rows written over years by many teachers are.

Loading drops the secondary indexes of the three tables it fills (not those backing a
constraint: primary keys and unique constraints stay, as do the foreign keys), COPYs, and
recreates each index from its own definition as pg_indexes holds it.
"""

from __future__ import annotations

import random
import time
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]

HEAVY_TEACHER = "bench-heavy-teacher"
# Tables the loader fills, in the order their foreign keys need.
TABLES = ("classes", "students", "class_student_association")
CLASS_COLUMNS = (
    "id",
    "name",
    "course_id",
    "created_by_user_id",
    "created_at",
    "updated_at",
    "version",
)
STUDENT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "legal_full_name",
    "email",
    "created_by_user_id",
    "created_at",
    "updated_at",
    "version",
)
MEMBERSHIP_COLUMNS = ("class_id", "student_id")
# How many classes a student is in (1-3), weighted to about 2.5: 25 students per class
# when a teacher has ten students per class they teach.
CLASSES_PER_STUDENT = (1, 2, 3)
CLASSES_PER_STUDENT_WEIGHTS = (0.15, 0.2, 0.65)
# Teachers generated (and their rows shuffled together) per COPY batch.
TEACHERS_PER_BATCH = 500
# The rows were created over two years before this instant (fixed: the same rows each run).
NEWEST = datetime(2026, 6, 1, tzinfo=UTC)
HISTORY = timedelta(days=730)

# fmt: off
FIRST_NAMES = (
    "Alice", "Alva", "Anna", "Astrid", "Ebba", "Elin", "Elsa", "Emma", "Freja", "Hanna", "Ida",
    "Ines", "Julia", "Klara", "Lea", "Linnéa", "Maja", "Matilda", "Moa", "Nora", "Olivia", "Saga",
    "Selma", "Signe", "Stina", "Tindra", "Vera", "Wilma", "Åsa", "Ängla", "Adam", "Albin",
    "Alexander", "Anton", "Arvid", "Axel", "Björn", "Elias", "Emil", "Erik", "Filip", "Gustav",
    "Hampus", "Hugo", "Isak", "Jonatan", "Kalle", "Leo", "Liam", "Loke", "Ludvig", "Måns", "Nils",
    "Oliver", "Olle", "Oskar", "Sixten", "Tage", "Viktor", "Örjan", "Mohammed", "Ali", "Yasmin",
    "Amira", "Noah", "Sofia", "Zeynep", "Aleksander", "Mia",
)
LAST_NAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson",
    "Jönsson", "Lindberg", "Jakobsson", "Magnusson", "Lindström", "Olofsson", "Lindqvist",
    "Lindgren", "Berg", "Axelsson", "Bergström", "Lundberg", "Lind", "Lundgren", "Lundqvist",
    "Mattsson", "Berglund", "Fredriksson", "Sandberg", "Henriksson", "Forsberg", "Sjöberg",
    "Wallin", "Engström", "Eklund", "Danielsson", "Lundin", "Håkansson", "Björk", "Bergman",
    "Gunnarsson", "Holm", "Wikström", "Samuelsson", "Isaksson", "Fransson", "Bergqvist", "Nyström",
    "Holmberg", "Arvidsson", "Löfgren", "Söderberg", "Nyberg", "Blomqvist", "Claesson",
    "Nordström", "Mårtensson", "Lundström", "Ali", "Åberg", "Öberg", "Ängström", "Ödman",
    "Åkesson", "Östlund", "Källström", "Sjögren", "Ström", "Hedlund", "Dahlberg", "Hellström",
    "de Wit", "von Platen", "Zetterberg", "Ahmed", "Hassan",
)
# fmt: on
COURSE_LABELS = {
    "ENG5": "Engelska 5",
    "ENG6": "Engelska 6",
    "ENG7": "Engelska 7",
    "SV1": "Svenska 1",
    "SV2": "Svenska 2",
    "SV3": "Svenska 3",
}
PROGRAMMES = ("NA", "SA", "TE", "EK", "ES", "HU", "BA", "EE", "VO", "IB")


@dataclass(frozen=True)
class PlatformShape:
    """How many rows of each kind; the heavy teacher comes on top of the platform's."""

    students: int = 1_000_000
    classes: int = 100_000
    teachers: int = 20_000
    heavy_classes: int = 60
    heavy_students: int = 10_000
    seed: int = 18

    @classmethod
    def heavy_only(cls, heavy_classes: int = 60, heavy_students: int = 10_000) -> PlatformShape:
        """Only the heavy teacher (the same rows as in the platform of the same seed)."""
        return cls(0, 0, 0, heavy_classes, heavy_students)

    def describe(self) -> str:
        platform = (
            f"{self.students:,} students and {self.classes:,} classes over "
            f"{self.teachers:,} teachers, plus "
            if self.teachers
            else ""
        )
        return (
            f"{platform}the heavy teacher with {self.heavy_classes} classes and "
            f"{self.heavy_students:,} students"
        )


@dataclass
class Rows:
    """The rows of a group of teachers, ready for COPY."""

    classes: list[tuple[Any, ...]] = field(default_factory=list)
    students: list[tuple[Any, ...]] = field(default_factory=list)
    memberships: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    def extend(self, other: Rows) -> None:
        self.classes += other.classes
        self.students += other.students
        self.memberships += other.memberships


@dataclass
class HeavyTeacher:
    """What the benchmark's requests of the heavy teacher name."""

    class_ids: list[uuid.UUID]
    student_ids: list[uuid.UUID]
    rows: Rows


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


class Generator:
    """Rows of teachers from one random stream."""

    def __init__(self, seed: int, course_ids: dict[str, uuid.UUID]) -> None:
        self.rng = random.Random(seed)
        self.course_ids = sorted(course_ids.items())
        self.emails = 0

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def times(self) -> tuple[datetime, datetime, int]:
        """created_at, updated_at and version of a row."""
        created = NEWEST - HISTORY * self.rng.random()
        version = self.rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]
        updated = created if version == 1 else created + (NEWEST - created) * self.rng.random()
        return created, updated, version

    def class_row(self, teacher: str) -> tuple[Any, ...]:
        code, course_id = self.rng.choice(self.course_ids)
        grade = self.rng.choice(("1", "2", "3"))
        group = f"{self.rng.choice(PROGRAMMES)}{grade}{'ABCDE'[self.rng.randrange(5)]}"
        name = f"{COURSE_LABELS[code]} {group}"
        if self.rng.random() < 0.2:
            name += f" grupp {self.rng.randrange(1, 4)}"
        return (self.uuid(), name, course_id, teacher, *self.times())

    def student_row(self, teacher: str) -> tuple[Any, ...]:
        first = self.rng.choice(FIRST_NAMES)
        last = self.rng.choice(LAST_NAMES)
        legal = (
            f"{first} {self.rng.choice(FIRST_NAMES)} {last}"
            if self.rng.random() < 0.3
            else f"{first} {last}"
        )
        self.emails += 1
        email = (
            None
            if self.rng.random() < 0.1
            else f"{_ascii(first)}.{_ascii(last)}{self.emails}@elev.example.se"
        )
        return (self.uuid(), first, last, legal, email, teacher, *self.times())

    def teacher(self, teacher: str, class_count: int, student_count: int) -> Rows:
        rows = Rows(classes=[self.class_row(teacher) for _ in range(class_count)])
        class_ids = [row[0] for row in rows.classes]
        for _ in range(student_count):
            student = self.student_row(teacher)
            rows.students.append(student)
            if not class_ids:
                continue
            wanted = self.rng.choices(CLASSES_PER_STUDENT, CLASSES_PER_STUDENT_WEIGHTS)[0]
            for class_id in self.rng.sample(class_ids, min(wanted, len(class_ids))):
                rows.memberships.append((class_id, student[0]))
        return rows


def heavy_teacher(shape: PlatformShape, course_ids: dict[str, uuid.UUID]) -> HeavyTeacher:
    """The heavy teacher's rows (their own random stream: the same in every shape)."""
    rows = Generator(shape.seed, course_ids).teacher(
        HEAVY_TEACHER, shape.heavy_classes, shape.heavy_students
    )
    return HeavyTeacher(
        class_ids=[row[0] for row in rows.classes],
        student_ids=[row[0] for row in rows.students],
        rows=rows,
    )


def batches(shape: PlatformShape, course_ids: dict[str, uuid.UUID]) -> Iterator[Rows]:
    """The platform's rows in batches of TEACHERS_PER_BATCH teachers, the heavy teacher's
    spread evenly over them; within a batch rows are shuffled, then stamped in that order
    with increasing created_at (rows are stored in the order they were created)."""
    heavy = heavy_teacher(shape, course_ids).rows
    platform = Generator(shape.seed + 1, course_ids)
    batch_count = max(1, -(-shape.teachers // TEACHERS_PER_BATCH))
    for batch in range(batch_count):
        rows = Rows()
        first, last = (
            batch * shape.teachers // batch_count,
            (batch + 1) * shape.teachers // batch_count,
        )
        for number in range(first, last):
            rows.extend(
                platform.teacher(
                    f"teacher-{number:05d}",
                    _share(shape.classes, shape.teachers, number),
                    _share(shape.students, shape.teachers, number),
                )
            )
        # The heavy teacher's classes come first (a membership needs its class), then a
        # share of their students with those students' memberships.
        students = heavy.students[_slice(len(heavy.students), batch_count, batch)]
        ids = {student[0] for student in students}
        rows.extend(
            Rows(
                heavy.classes if batch == 0 else [],
                students,
                [membership for membership in heavy.memberships if membership[1] in ids],
            )
        )
        platform.rng.shuffle(rows.classes)
        platform.rng.shuffle(rows.students)
        platform.rng.shuffle(rows.memberships)
        start = NEWEST - HISTORY * (1 - batch / batch_count)
        for table in (rows.classes, rows.students):
            step = HISTORY / batch_count / max(len(table), 1)
            for index, row in enumerate(table):
                created = start + step * index
                updated = max(row[-2], created) if row[-1] > 1 else created
                table[index] = (*row[:-3], created, updated, row[-1])
        yield rows


def _share(total: int, parts: int, index: int) -> int:
    return (index + 1) * total // parts - index * total // parts


def _slice(total: int, parts: int, index: int) -> slice:
    return slice(index * total // parts, (index + 1) * total // parts)


# -- loading ------------------------------------------------------------------------------

SECONDARY_INDEXES = """
    SELECT i.indexname, i.indexdef
    FROM pg_indexes i
    JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = 'public'::regnamespace
    WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
      AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = c.oid)
    ORDER BY i.indexname
"""


async def course_ids(connection: asyncpg.Connection) -> dict[str, uuid.UUID]:
    """The courses migration 0002 seeded, by code."""
    rows = await connection.fetch("SELECT course_code::text, id FROM courses")
    return {code: course_id for code, course_id in rows}


async def load_platform(database_url: str, shape: PlatformShape) -> dict[str, float]:
    """Fill the migrated database at ``database_url`` with ``shape``'s rows; return the
    seconds spent on each phase (``copy``, ``indexes``, ``analyze``)."""
    connection = await asyncpg.connect(database_url)
    timings: dict[str, float] = {}
    try:
        # Index builds sort in memory (the stack's PostgreSQL has the default 64 MB).
        await connection.execute("SET maintenance_work_mem = '512MB'")
        started = time.monotonic()
        indexes = await connection.fetch(SECONDARY_INDEXES, list(TABLES))
        for name, _definition in indexes:
            await connection.execute(f'DROP INDEX "{name}"')
        courses = await course_ids(connection)
        for rows in batches(shape, courses):
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "classes", records=rows.classes, columns=CLASS_COLUMNS
                )
                await connection.copy_records_to_table(
                    "students", records=rows.students, columns=STUDENT_COLUMNS
                )
                await connection.copy_records_to_table(
                    "class_student_association",
                    records=rows.memberships,
                    columns=MEMBERSHIP_COLUMNS,
                )
        timings["copy"] = time.monotonic() - started
        started = time.monotonic()
        for _name, definition in indexes:
            await connection.execute(definition)
        timings["indexes"] = time.monotonic() - started
        started = time.monotonic()
        await connection.execute("VACUUM ANALYZE " + ", ".join(TABLES))
        timings["analyze"] = time.monotonic() - started
    finally:
        await connection.close()
    return timings
