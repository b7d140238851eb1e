"""Class routes: thin adapters from HTTP to ClassManagementServiceProtocol."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import (
    document_request,
    validate_querystring,
    validate_request,
    validate_response,
)

from services.class_management_service.api.etags import expected_version, with_etag
from services.class_management_service.api.idempotency import idempotent
from services.class_management_service.api.openapi import documented
from services.class_management_service.api.path_params import parse_uuid
from services.class_management_service.api.request_context import current_context
from services.class_management_service.api.student_import import accepts_csv, read_import
from services.class_management_service.api_models import (
    ClassListResponse,
    ClassResponse,
    CreateClassRequest,
    EssayWriterResponse,
    ImportQuery,
    ImportReportResponse,
    ImportStudentsRequest,
    ListClassesQuery,
    PageQuery,
    RosterResponse,
    UpdateClassRequest,
)
from services.class_management_service.protocols import ClassManagementServiceProtocol

# Each route documents (@documented) every problem status it can answer beyond the 400,
# 401 and 503 of every /v1 route: the OpenAPI document is the whole contract, and
# tests/reliability/test_fuzz_openapi.py fails on any status it does not list.
class_bp = Blueprint("classes", __name__, url_prefix="/v1/classes")
Service = FromDishka[ClassManagementServiceProtocol]


@class_bp.post("")
@class_bp.post("/")
@idempotent
@documented(409, 413, 415, 422)
@validate_request(CreateClassRequest)
@validate_response(ClassResponse, 201)
@inject
async def create_class(
    data: CreateClassRequest, service: Service
) -> tuple[ClassResponse, int, dict[str, str]]:
    context = current_context()
    record = await service.create_class(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        name=data.name,
        course_codes=data.course_codes,
    )
    return with_etag(ClassResponse.of(record), 201, location=f"/v1/classes/{record.id}")


@class_bp.get("")
@class_bp.get("/")
@documented()
@validate_querystring(ListClassesQuery)
@validate_response(ClassListResponse, 200)
@inject
async def list_classes(query_args: ListClassesQuery, service: Service) -> ClassListResponse:
    page = await service.list_classes(
        user_id=current_context().user_id,
        limit=query_args.limit,
        offset=query_args.offset,
        course_code=query_args.course_code,
        filters=query_args.filters(query_args.sort),
        status=query_args.status,
    )
    return ClassListResponse.of(page)


@class_bp.get("/essays/<essay_id>")
@documented(404)
@validate_response(EssayWriterResponse, 200)
@inject
async def get_essay_writer(essay_id: str, service: Service) -> EssayWriterResponse:
    """Which of the caller's students wrote the essay (404 unless one of them did)."""
    writer = await service.get_essay_writer(
        user_id=current_context().user_id, essay_id=parse_uuid(essay_id, "essay_id")
    )
    return EssayWriterResponse.of(writer)


@class_bp.get("/<class_id>")
@documented(404)
@validate_response(ClassResponse, 200)
@inject
async def get_class(class_id: str, service: Service) -> tuple[ClassResponse, int, dict[str, str]]:
    record = await service.get_class(
        user_id=current_context().user_id, class_id=parse_uuid(class_id, "class_id")
    )
    return with_etag(ClassResponse.of(record), 200)


@class_bp.put("/<class_id>")
@documented(404, 412, 413, 415)
@validate_request(UpdateClassRequest)
@validate_response(ClassResponse, 200)
@inject
async def update_class(
    class_id: str, data: UpdateClassRequest, service: Service
) -> tuple[ClassResponse, int, dict[str, str]]:
    context = current_context()
    record = await service.update_class(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        class_id=parse_uuid(class_id, "class_id"),
        name=data.name,
        course_codes=data.course_codes,
        expected_version=expected_version(),
        status=data.status,
    )
    return with_etag(ClassResponse.of(record), 200)


@class_bp.delete("/<class_id>")
@documented(404, 412)
@inject
async def delete_class(class_id: str, service: Service) -> Response:
    context = current_context()
    await service.delete_class(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        class_id=parse_uuid(class_id, "class_id"),
        expected_version=expected_version(),
    )
    return Response(status=204)


@class_bp.get("/<class_id>/roster")
@documented(404)
@validate_querystring(PageQuery)
@validate_response(RosterResponse, 200)
@inject
async def get_roster(class_id: str, query_args: PageQuery, service: Service) -> RosterResponse:
    page = await service.get_roster(
        user_id=current_context().user_id,
        class_id=parse_uuid(class_id, "class_id"),
        limit=query_args.limit,
        offset=query_args.offset,
    )
    return RosterResponse.of(page)


@class_bp.post("/<class_id>/students/import")
@idempotent
@documented(404, 409, 413, 415, 422)
@accepts_csv
@document_request(ImportStudentsRequest)
@validate_querystring(ImportQuery)
@validate_response(ImportReportResponse, 200)
@inject
async def import_students(
    class_id: str, query_args: ImportQuery, service: Service
) -> ImportReportResponse:
    """Import a class list: all rows or none.

    A JSON body, or a CSV file (`text/csv`, UTF-8 with or without a BOM, `,` or `;` as
    delimiter) whose header names the columns first_name, last_name, email and
    legal_full_name (any order and case; also förnamn, efternamn, e-post). A row whose
    e-mail is one of the caller's students is that student, added to the class unless a
    member; every other row is a new student in it. At most 1000 rows (413 TOO_MANY_ROWS);
    any invalid row: 400 IMPORT_INVALID listing every one, nothing written; an archived
    class: 409 CLASS_ARCHIVED. A dry run (`dry_run`) reports what an import would do and
    writes nothing.
    """
    context = current_context()
    parsed_id = parse_uuid(class_id, "class_id")
    imported = await read_import(query_args.dry_run)
    report = await service.import_students(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        class_id=parsed_id,
        rows=imported.rows,
        dry_run=imported.dry_run,
    )
    return ImportReportResponse.of(report)
