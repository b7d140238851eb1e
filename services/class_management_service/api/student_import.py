"""An imported class list as rows: a JSON body, or a CSV file as spreadsheets export it.

Both become the same document (``ImportStudentsRequest``) and are validated by its models,
as a new student is; every invalid row is reported at once (IMPORT_INVALID), with its row
number (data rows from 1), its field and the error's code. A CSV file is UTF-8, with or
without a BOM; its delimiter is ``,`` or ``;`` (whichever its header line has more of:
Swedish spreadsheets write ``;``); its header names the columns, in any order and case, in
English or Swedish. Empty lines are skipped; an empty ``email`` or ``legal_full_name`` cell
is no value.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError
from quart import request

from services.class_management_service.api.problems import field_errors
from services.class_management_service.api.request_context import accepts
from services.class_management_service.api_models import ImportStudentsRequest
from services.class_management_service.domain import MAX_IMPORT_ROWS, ImportRow
from services.class_management_service.exceptions import (
    ImportInvalidError,
    TooManyRowsError,
    ValidationFailedError,
)

CSV_CONTENT_TYPE = "text/csv"
accepts_csv = accepts(CSV_CONTENT_TYPE)

# A header cell (case-folded, NFC) and the column it names.
CSV_COLUMNS = {
    "first_name": "first_name",
    "förnamn": "first_name",
    "last_name": "last_name",
    "efternamn": "last_name",
    "email": "email",
    "e-post": "email",
    "legal_full_name": "legal_full_name",
}
_REQUIRED_COLUMNS = ("first_name", "last_name")
# Columns whose empty cell means "none" (a name's empty cell is an empty name: invalid).
_OPTIONAL_COLUMNS = frozenset({"email", "legal_full_name"})


@dataclass(frozen=True, slots=True)
class ImportRequest:
    rows: list[ImportRow]
    dry_run: bool


async def read_import(dry_run: bool) -> ImportRequest:
    """The request's rows, valid and with no e-mail twice; ``dry_run`` from the query (a
    JSON body may say it too). Raises ValidationFailedError (the document or the CSV header
    is not one; no rows), TooManyRowsError, ImportInvalidError."""
    if request.mimetype == CSV_CONTENT_TYPE:
        records, errors = csv_records(cast(bytes, await request.get_data(as_text=False)))
        document: Any = {"students": records}
    else:
        document = await request.get_json()
        errors = []
    students = document.get("students") if isinstance(document, dict) else None
    if isinstance(students, list) and len(students) > MAX_IMPORT_ROWS:
        raise TooManyRowsError(
            f"An import has at most {MAX_IMPORT_ROWS} rows; this one has {len(students)}."
        )
    body = None
    try:
        body = ImportStudentsRequest.model_validate(document)
    except ValidationError as error:
        errors += _row_errors(error)
    if isinstance(students, list):
        errors += _repeated_emails(students)
    if errors or body is None:
        raise ImportInvalidError(
            f"{len({error['row'] for error in errors})} row(s) are invalid; nothing was imported.",
            errors=sorted(errors, key=lambda error: error["row"]),
        )
    return ImportRequest(
        [student.to_import_row(row) for row, student in enumerate(body.students, start=1)],
        dry_run or body.dry_run,
    )


def _row_errors(error: ValidationError) -> list[dict[str, Any]]:
    """The errors of rows as ``{row, field, code, msg}``; raises ValidationFailedError when
    the document itself is invalid (not an object, no rows, an unknown field...)."""
    rows: list[dict[str, Any]] = []
    for item in field_errors(error):
        match item["loc"]:
            case ["students", int(index), *rest]:
                field = rest[0] if rest and isinstance(rest[0], str) else None
                rows.append(
                    {"row": index + 1, "field": field, "code": item["type"], "msg": item["msg"]}
                )
            case _:
                raise ValidationFailedError("The import is not valid.", errors=field_errors(error))
    return rows


def _repeated_emails(students: Sequence[Any]) -> list[dict[str, Any]]:
    """An error on each row whose e-mail an earlier row has (compared as stored: lower case)."""
    seen: dict[str, int] = {}
    errors = []
    for row, student in enumerate(students, start=1):
        email = student.get("email") if isinstance(student, dict) else None
        if not isinstance(email, str) or not email.strip():
            continue
        first = seen.setdefault(email.strip().lower(), row)
        if first != row:
            errors.append(
                {
                    "row": row,
                    "field": "email",
                    "code": "duplicate_email",
                    "msg": f"The same e-mail as row {first}",
                }
            )
    return errors


def csv_records(data: bytes) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """A CSV file's data rows as records by column, and the errors of rows with more cells
    than the header; raises ValidationFailedError for a file that is not such a CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailedError("The CSV file must be UTF-8 text.") from None
    header_line = text.partition("\n")[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
        columns = _columns(header)
        records: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # an empty line is no row
            row = len(records) + 1
            if len(cells) > len(columns):
                errors.append(
                    {
                        "row": row,
                        "field": None,
                        "code": "too_many_cells",
                        "msg": f"{len(cells)} cells; the header names {len(columns)} columns",
                    }
                )
            records.append(
                {
                    column: cell
                    for column, cell in zip(columns, cells, strict=False)
                    if cell.strip() or column not in _OPTIONAL_COLUMNS
                }
            )
    except csv.Error as error:
        raise ValidationFailedError(f"The CSV file cannot be read: {error}.") from None
    return records, errors


def _columns(header: list[str]) -> list[str]:
    """The column each header cell names; raises ValidationFailedError for an unknown or
    repeated column, or a missing name column."""
    columns = [
        CSV_COLUMNS.get(unicodedata.normalize("NFC", cell).strip().casefold(), "")
        for cell in header
    ]
    problems = [
        {"loc": ["header", index + 1], "msg": "Unknown column", "type": "unknown_column"}
        for index, column in enumerate(columns)
        if not column
    ]
    problems += [
        {"loc": ["header", column], "msg": "Column named twice", "type": "repeated_column"}
        for column in sorted({c for c in columns if c and columns.count(c) > 1})
    ]
    problems += [
        {"loc": ["header", column], "msg": "Column missing", "type": "missing_column"}
        for column in _REQUIRED_COLUMNS
        if column not in columns
    ]
    if problems:
        known = ", ".join(CSV_COLUMNS)
        raise ValidationFailedError(
            f"The CSV header must name the columns (known: {known}).", errors=problems
        )
    return columns
