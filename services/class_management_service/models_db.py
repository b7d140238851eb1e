"""SQLAlchemy models. Alembic migrations create the schema; the app never calls ``create_all``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import Enum as SQLAlchemyEnum
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common_core import ClassStatus, CourseCode, Language

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Names sort in Swedish order whatever the database's locale: the name columns' collation is
# this ICU one (migration 0004).
NAME_COLLATION = "sv-x-icu"
SortedName = String(255, collation=NAME_COLLATION)
# What ``q`` searches in a student (migration 0004's immutable SQL function), and the keys
# of its trigrams of one owner that a search reads (migration 0006).
STUDENT_SEARCH_TEXT = "student_search_text(first_name, last_name, legal_full_name, email)"
STUDENT_SEARCH_KEYS = f"owner_search_keys(created_by_user_id, {STUDENT_SEARCH_TEXT})"


def _enum_values(enum_cls: type[Any]) -> list[str]:
    return [member.value for member in enum_cls]


course_code_enum = SQLAlchemyEnum(
    CourseCode, name="course_code_enum", values_callable=_enum_values, validate_strings=True
)
language_enum = SQLAlchemyEnum(
    Language, name="language_enum", values_callable=_enum_values, validate_strings=True
)
# Migration 0005.
class_status_enum = SQLAlchemyEnum(
    ClassStatus, name="class_status_enum", values_callable=_enum_values, validate_strings=True
)


def _timestamp(nullable: bool = False) -> Mapped[Any]:
    return mapped_column(DateTime(timezone=True), nullable=nullable, server_default=func.now())


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    course_code: Mapped[CourseCode] = mapped_column(course_code_enum, unique=True)
    language: Mapped[Language] = mapped_column(language_enum)
    name: Mapped[str] = mapped_column(String(255))


class_student_association = Table(
    "class_student_association",
    Base.metadata,
    Column(
        "class_id",
        UUID(as_uuid=True),
        ForeignKey("classes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "student_id",
        UUID(as_uuid=True),
        ForeignKey("students.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A student's classes, from the index alone (migration 0007).
    Index("ix_class_student_association_student_class", "student_id", "class_id"),
)


class UserClass(Base):
    __tablename__ = "classes"
    # Migration 0004: the list's sorts (owner first, then the order, then id) and ``q``.
    __table_args__ = (
        Index("ix_classes_owner_created_at", "created_by_user_id", "created_at", "id"),
        Index("ix_classes_owner_updated_at", "created_by_user_id", "updated_at", "id"),
        Index("ix_classes_owner_name", "created_by_user_id", "name", "id"),
        Index(
            "ix_classes_name_search",
            text("search_folded(name)"),
            postgresql_using="gin",
            postgresql_ops={"search_folded(name)": "gin_trgm_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), index=True)
    created_by_user_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    status: Mapped[ClassStatus] = mapped_column(
        class_status_enum, server_default=ClassStatus.ACTIVE.value
    )

    course: Mapped[Course] = relationship(lazy="raise")


class Student(Base):
    __tablename__ = "students"
    __table_args__ = (
        UniqueConstraint("created_by_user_id", "email", name="uq_students_owner_email"),
        Index("ix_students_owner_created_at", "created_by_user_id", "created_at", "id"),
        Index("ix_students_owner_updated_at", "created_by_user_id", "updated_at", "id"),
        Index("ix_students_owner_name", "created_by_user_id", "last_name", "first_name", "id"),
        Index("ix_students_owner_search", text(STUDENT_SEARCH_KEYS), postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    first_name: Mapped[str] = mapped_column(SortedName)
    last_name: Mapped[str] = mapped_column(SortedName)
    legal_full_name: Mapped[str] = mapped_column(String(511))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_by_user_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp()
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class EssayStudentAssociation(Base):
    __tablename__ = "essay_student_associations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    essay_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    student_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), index=True
    )
    created_by_user_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _timestamp()


class EventOutbox(Base):
    """Events written in the same transaction as the change; the relay publishes them and
    deletes each row once the broker acknowledged it (parked rows stay)."""

    __tablename__ = "event_outbox"
    __table_args__ = (
        Index("ix_event_outbox_pending", "id", postgresql_where=text("parked_at IS NULL")),
        Index("ix_event_outbox_aggregate", "aggregate_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    event_type: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    aggregate_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _timestamp()
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = _timestamp()
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
