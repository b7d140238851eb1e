"""Request and response bodies of the REST API (validated by quart-schema, in the OpenAPI)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from common_core import ClassStatus, CourseCode, PersonNameV1
from services.class_management_service.domain import (
    KEEP,
    MAX_IMPORT_ROWS,
    ImportOutcome,
    ImportRow,
    Keep,
    ListFilters,
    Page,
    SortKey,
)

# Bidirectional overrides and isolates reorder what a reader sees ("evil\u202egpj.exe").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _composed(value: object) -> object:
    """Unicode NFC, trimmed: a composed and a decomposed "é" are one name (stored, compared,
    searched alike). Before the length check, which then counts what is stored."""
    if not isinstance(value, str):
        return value
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: not text (the message must not quote it)
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return unicodedata.normalize("NFC", value).strip()


def _plain_text(value: str) -> str:
    """Refuse control characters (Unicode Cc, NUL included) and bidirectional controls:
    names and e-mails are shown to people, and must read as what they are."""
    for position, character in enumerate(value):
        if character in _BIDI_CONTROLS or unicodedata.category(character) == "Cc":
            raise ValueError(
                "must not contain control or bidirectional formatting characters"
                f" (U+{ord(character):04X} at position {position})"
            )
    return value


def _plain_input(value: object) -> object:
    return _plain_text(value) if isinstance(value, str) else value


# A class or person name: NFC, trimmed, 1-255 characters, plain text.
DisplayName = Annotated[
    str,
    BeforeValidator(_composed),
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_plain_text),
]
ClassName = DisplayName
PersonName = DisplayName
# Email validation normalises to NFC itself; plain text is checked first for one message.
Email = Annotated[EmailStr, BeforeValidator(_plain_input)]
MAX_IDS = 100

# Validation stays at 1-10 free strings so that the service layer answers with its own
# codes (resolve_course_code: 400 MULTIPLE_COURSE_ERROR, COURSE_NOT_FOUND); the document
# states the real rule: exactly one known course.
CourseCodes = Annotated[
    list[str],
    Field(min_length=1, max_length=10),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "enum": [code.value for code in CourseCode]},
            "minItems": 1,
            "maxItems": 1,
        }
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateClassRequest(_Body):
    name: ClassName
    course_codes: CourseCodes


class _MergePatch(_Body):
    """A PUT body with merge-patch meaning: a field left out is unchanged; ``null`` removes a
    field that may be absent (``REMOVABLE``) and is refused for one that may not."""

    REMOVABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _null_only_where_removable(self) -> Self:
        nulled = sorted(
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and name not in self.REMOVABLE
        )
        if nulled:
            raise ValueError(
                f"{', '.join(nulled)}: null would remove a required field; leave it out to keep it"
            )
        return self


class UpdateClassRequest(_MergePatch):
    """Merge-patch of a class: only the fields given change."""

    name: ClassName | None = Field(default=None, description="Left out: unchanged.")
    course_codes: CourseCodes | None = Field(default=None, description="Left out: unchanged.")
    status: ClassStatus | None = Field(
        default=None,
        description="archived: the class keeps its students but gains none; active: restored."
        " Left out: unchanged.",
    )


class PersonNameRequest(_Body):
    first_name: PersonName
    last_name: PersonName
    legal_full_name: PersonName | None = None

    @model_validator(mode="after")
    def _default_legal_name_fits(self) -> PersonNameRequest:
        if self.legal_full_name is None and len(self.first_name) + len(self.last_name) >= 255:
            raise ValueError(
                "legal_full_name is required when first and last name are this long together"
            )
        return self

    def to_person_name(self) -> PersonNameV1:
        return PersonNameV1(
            first_name=self.first_name,
            last_name=self.last_name,
            legal_full_name=self.legal_full_name or f"{self.first_name} {self.last_name}",
        )


class CreateStudentRequest(_Body):
    person_name: PersonNameRequest
    email: Email | None = None
    class_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)


class ImportStudentRow(PersonNameRequest):
    """One student of an imported class list: validated as a new student is."""

    email: Email | None = None

    def to_import_row(self, row: int) -> ImportRow:
        return ImportRow(row, self.to_person_name(), self.email)


class ImportStudentsRequest(_Body):
    """A class list: a row whose e-mail is one of the caller's students is that student
    (added to the class), every other row a new student in it. All or nothing."""

    students: list[ImportStudentRow] = Field(
        min_length=1,
        description=f"1-{MAX_IMPORT_ROWS} rows (more: 413 TOO_MANY_ROWS); no e-mail twice.",
    )
    dry_run: bool = Field(
        default=False, description="true: the report a real import would give; nothing written."
    )


class ImportQuery(BaseModel):
    dry_run: bool = Field(
        default=False,
        description="true: the report a real import would give, nothing written (for CSV).",
    )


class PersonNamePatch(_MergePatch):
    """Merge-patch of a name: only the parts given change (the stored legal_full_name too
    stays unless given)."""

    first_name: PersonName | None = Field(default=None, description="Left out: unchanged.")
    last_name: PersonName | None = Field(default=None, description="Left out: unchanged.")
    legal_full_name: PersonName | None = Field(default=None, description="Left out: unchanged.")


class UpdateStudentRequest(_MergePatch):
    """Merge-patch of a student: only the fields given change; ``"email": null`` removes the
    e-mail address. Adding a class the student is in, or removing one it is not in, changes
    nothing; a request that changes nothing is answered with the student as it is."""

    REMOVABLE: ClassVar[frozenset[str]] = frozenset({"email", "add_class_ids", "remove_class_ids"})

    person_name: PersonNamePatch | None = Field(
        default=None, description="Only the name parts given change."
    )
    email: Email | None = Field(
        default=None, description="Left out: unchanged; null: the e-mail address is removed."
    )
    add_class_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    remove_class_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)

    @model_validator(mode="after")
    def _added_or_removed(self) -> UpdateStudentRequest:
        both = set(self.add_class_ids or ()) & set(self.remove_class_ids or ())
        if both:
            raise ValueError(
                "a class cannot be both added and removed: "
                + ", ".join(sorted(str(class_id) for class_id in both))
            )
        return self

    @property
    def email_change(self) -> str | Keep | None:
        """The e-mail to store (None: remove it), or KEEP when it was left out."""
        return self.email if "email" in self.model_fields_set else KEEP


def _split_ids(value: object) -> object:
    # ?ids=a,b,c (a repeated ?ids= is read the same way, every value split).
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [part.strip() for item in value for part in item.split(",")]
    return value


# A batch of ids in one query parameter: comma-separated UUIDs, at most MAX_IDS.
IdList = Annotated[
    tuple[uuid.UUID, ...],
    BeforeValidator(_split_ids),
    Field(min_length=1, max_length=MAX_IDS),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9a-fA-F-]{32,36}(,[0-9a-fA-F-]{32,36}){0,99}$",
            "description": (
                f"Comma-separated ids, at most {MAX_IDS}: only these are listed; ids of "
                "missing resources or of other users' are simply absent."
            ),
        }
    ),
]
SearchText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    Field(description="A case- and accent-insensitive substring (q=oberg finds Öberg)."),
]


class PageQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class _ListQuery(PageQuery):
    """The filters and order shared by the class and the student list."""

    q: SearchText | SkipJsonSchema[None] = None
    ids: IdList | SkipJsonSchema[None] = None
    updated_since: datetime | SkipJsonSchema[None] = Field(
        default=None, description="Only what changed at or after this ISO 8601 date-time."
    )

    _plain_q = field_validator("q")(_plain_input)

    @field_validator("updated_since", mode="before")
    @classmethod
    def _iso_only(cls, value: object) -> object:
        # pydantic would read a bare number as a Unix time; the API takes ISO 8601 only.
        if isinstance(value, int | float) or (
            isinstance(value, str) and re.fullmatch(r"[\d.eE+-]+", value.strip())
        ):
            raise ValueError("must be an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z")
        return value

    @field_validator("updated_since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must include a timezone, e.g. 2026-01-01T00:00:00Z")
        try:
            # In UTC, as the database compares it; a year past 9999 there is out of range.
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None

    def filters(self, sort: SortKey) -> ListFilters:
        return ListFilters(q=self.q, ids=self.ids, updated_since=self.updated_since, sort=sort)


_SORT_HELP = (
    "Order: name, created_at or updated_at, descending with a leading '-'. Names sort in "
    "Swedish order, case-insensitively; ties by id."
)


class ListClassesQuery(_ListQuery):
    course_code: CourseCode | SkipJsonSchema[None] = None
    status: ClassStatus | SkipJsonSchema[None] = Field(
        default=None, description="Only active or only archived classes; left out: both."
    )
    sort: SortKey = Field(default="-created_at", description=_SORT_HELP)


class ListStudentsQuery(_ListQuery):
    class_id: uuid.UUID | SkipJsonSchema[None] = None
    sort: SortKey = Field(
        default="name", description=_SORT_HELP + " Students by last name, then first name."
    )


class StudentClassesQuery(PageQuery):
    sort: SortKey = Field(default="-created_at", description=_SORT_HELP)


class Pagination(BaseModel):
    limit: int
    offset: int
    returned: int
    total: int


class _FromRecords(BaseModel):
    """A response read from the service's records (domain.py) by ``of``, the one mapper.

    One validation in pydantic-core reading the records' attributes: of a record (its
    fields by name), of a ``Page`` (its records into ``items_field``, plus ``pagination``)
    or of a list of records (into ``items_field``). For a page that is about a third
    cheaper than validating each record on its own.
    """

    items_field: ClassVar[str] = ""

    @classmethod
    def of(cls, source: object) -> Self:
        if isinstance(source, Page):
            source = {
                cls.items_field: source.items,
                "pagination": {
                    "limit": source.limit,
                    "offset": source.offset,
                    "returned": len(source.items),
                    "total": source.total,
                },
            }
        elif isinstance(source, Sequence):
            source = {cls.items_field: source}
        return cls.model_validate(source, from_attributes=True)


class ClassResponse(_FromRecords):
    id: uuid.UUID
    name: str
    course_code: CourseCode
    student_count: int
    created_at: datetime
    updated_at: datetime
    version: int
    status: ClassStatus


class ClassListResponse(_FromRecords):
    items_field = "classes"

    classes: list[ClassResponse]
    pagination: Pagination


class StudentResponse(_FromRecords):
    id: uuid.UUID
    full_name: str
    first_name: str
    last_name: str
    legal_full_name: str
    email: str | None
    class_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime
    version: int


class StudentListResponse(_FromRecords):
    items_field = "students"

    students: list[StudentResponse]
    pagination: Pagination


class RosterEntry(BaseModel):
    student_id: uuid.UUID
    first_name: str
    last_name: str
    legal_full_name: str
    email: str | None


class RosterResponse(_FromRecords):
    items_field = "students"

    students: list[RosterEntry]
    pagination: Pagination


class EssayLinkResponse(_FromRecords):
    essay_id: uuid.UUID
    student_id: uuid.UUID
    created_at: datetime


class EssayListResponse(_FromRecords):
    items_field = "essays"

    essays: list[EssayLinkResponse]
    pagination: Pagination


class EssayWriterStudent(BaseModel):
    id: uuid.UUID
    first_name: str
    last_name: str
    legal_full_name: str
    email: str | None


class EssayWriterResponse(_FromRecords):
    """Which of the caller's students wrote an essay."""

    essay_id: uuid.UUID
    student_id: uuid.UUID
    created_at: datetime
    student: EssayWriterStudent


class ImportedStudentResponse(BaseModel):
    row: int = Field(description="The data row, counted from 1.")
    student_id: uuid.UUID | None = Field(
        description="The student's id; null for a student a dry run would create."
    )
    outcome: ImportOutcome


class ImportReportResponse(_FromRecords):
    """What the import did (or, a dry run, would do), row by row."""

    class_id: uuid.UUID
    dry_run: bool
    created: int
    added: int
    unchanged: int
    students: list[ImportedStudentResponse]


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ImportRowError(BaseModel):
    """An invalid row of an import (IMPORT_INVALID)."""

    row: int = Field(description="The data row, counted from 1.")
    field: str | None = Field(description="The column; null: the row as a whole.")
    code: str
    msg: str


class ProblemResponse(BaseModel):
    """RFC 9457 problem details, served as ``application/problem+json``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    correlation_id: str
    errors: list[FieldError | ImportRowError] | None = None


class DependencyHealth(BaseModel):
    status: str
    detail: str | None = None


class HealthResponse(BaseModel):
    status: str
    dependencies: dict[str, DependencyHealth]


class UserHeaders(BaseModel):
    """Headers every ``/v1`` route reads (documented in the OpenAPI; checked per request)."""

    x_user_id: str = Field(alias="X-User-ID", min_length=1, max_length=255)
    x_correlation_id: uuid.UUID | SkipJsonSchema[None] = Field(
        default=None, alias="X-Correlation-ID"
    )
