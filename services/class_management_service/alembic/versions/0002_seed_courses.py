"""Seed the six courses: ENG5/6/7 (English) and SV1/2/3 (Swedish).

Revision ID: 0002
Revises: 0001
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A migration is a frozen record: the seed data is written out here, not read from code
# that may change later. tests/integration/test_migrations.py checks it against common_core.
COURSES = (
    ("ENG5", "en", "English 5"),
    ("ENG6", "en", "English 6"),
    ("ENG7", "en", "English 7"),
    ("SV1", "sv", "Svenska 1"),
    ("SV2", "sv", "Svenska 2"),
    ("SV3", "sv", "Svenska 3"),
)
COURSE_NAMESPACE = uuid.UUID("8d0f5d8e-3f55-4b4c-9a55-0c2b9bd9b6a1")

courses = sa.table(
    "courses",
    sa.column("id", sa.UUID()),
    sa.column("course_code", postgresql.ENUM(name="course_code_enum", create_type=False)),
    sa.column("language", postgresql.ENUM(name="language_enum", create_type=False)),
    sa.column("name", sa.String()),
)


def upgrade() -> None:
    op.bulk_insert(
        courses,
        [
            {
                "id": uuid.uuid5(COURSE_NAMESPACE, code),
                "course_code": code,
                "language": language,
                "name": name,
            }
            for code, language, name in COURSES
        ],
    )


def downgrade() -> None:
    op.execute(courses.delete())
