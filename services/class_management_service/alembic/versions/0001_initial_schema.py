"""Initial schema: courses, classes, students, memberships, essay links, event outbox.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COURSE_CODES = ("ENG5", "ENG6", "ENG7", "SV1", "SV2", "SV3")
LANGUAGES = ("en", "sv")


def _timestamp(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=nullable)


def upgrade() -> None:
    course_code_enum = postgresql.ENUM(*COURSE_CODES, name="course_code_enum", create_type=False)
    language_enum = postgresql.ENUM(*LANGUAGES, name="language_enum", create_type=False)
    course_code_enum.create(op.get_bind(), checkfirst=False)
    language_enum.create(op.get_bind(), checkfirst=False)

    op.create_table(
        "courses",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("course_code", course_code_enum, nullable=False),
        sa.Column("language", language_enum, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_courses"),
        sa.UniqueConstraint("course_code", name="uq_courses_course_code"),
    )
    op.create_table(
        "classes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("created_by_user_id", sa.String(255), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name="fk_classes_course_id_courses"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_classes"),
    )
    op.create_index("ix_classes_course_id", "classes", ["course_id"])
    op.create_index("ix_classes_created_by_user_id", "classes", ["created_by_user_id"])
    op.create_index("ix_classes_owner_created_at", "classes", ["created_by_user_id", "created_at"])

    op.create_table(
        "students",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("first_name", sa.String(255), nullable=False),
        sa.Column("last_name", sa.String(255), nullable=False),
        sa.Column("legal_full_name", sa.String(511), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("created_by_user_id", sa.String(255), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_students"),
        sa.UniqueConstraint("created_by_user_id", "email", name="uq_students_owner_email"),
    )
    op.create_index("ix_students_created_by_user_id", "students", ["created_by_user_id"])

    op.create_table(
        "class_student_association",
        sa.Column("class_id", sa.UUID(), nullable=False),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["classes.id"],
            name="fk_class_student_association_class_id_classes",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.id"],
            name="fk_class_student_association_student_id_students",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("class_id", "student_id", name="pk_class_student_association"),
    )
    op.create_index(
        "ix_class_student_association_student_id", "class_student_association", ["student_id"]
    )

    op.create_table(
        "essay_student_associations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("essay_id", sa.UUID(), nullable=False),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("created_by_user_id", sa.String(255), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.id"],
            name="fk_essay_student_associations_student_id_students",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_essay_student_associations"),
        sa.UniqueConstraint("essay_id", name="uq_essay_student_associations_essay_id"),
    )
    op.create_index(
        "ix_essay_student_associations_student_id", "essay_student_associations", ["student_id"]
    )

    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("aggregate_id", sa.String(255), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        _timestamp("created_at"),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_event_outbox"),
        sa.UniqueConstraint("event_id", name="uq_event_outbox_event_id"),
    )
    op.create_index(
        "ix_event_outbox_pending",
        "event_outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL AND parked_at IS NULL"),
    )
    op.create_index("ix_event_outbox_aggregate", "event_outbox", ["aggregate_id", "id"])


def downgrade() -> None:
    op.drop_table("event_outbox")
    op.drop_table("essay_student_associations")
    op.drop_table("class_student_association")
    op.drop_table("students")
    op.drop_table("classes")
    op.drop_table("courses")
    postgresql.ENUM(name="language_enum").drop(op.get_bind(), checkfirst=False)
    postgresql.ENUM(name="course_code_enum").drop(op.get_bind(), checkfirst=False)
