"""Student and essay-link routes: thin adapters from HTTP to ClassManagementServiceProtocol."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import validate_querystring, validate_request, validate_response

from services.class_management_service.api.etags import expected_version, with_etag
from services.class_management_service.api.idempotency import idempotent
from services.class_management_service.api.openapi import documented
from services.class_management_service.api.path_params import parse_uuid
from services.class_management_service.api.request_context import current_context
from services.class_management_service.api_models import (
    ClassListResponse,
    CreateStudentRequest,
    EssayLinkResponse,
    EssayListResponse,
    ListStudentsQuery,
    PageQuery,
    PersonNamePatch,
    StudentClassesQuery,
    StudentListResponse,
    StudentResponse,
    UpdateStudentRequest,
)
from services.class_management_service.domain import StudentChanges
from services.class_management_service.protocols import ClassManagementServiceProtocol

# Each route documents (@documented) every problem status it can answer beyond the 400,
# 401 and 503 of every /v1 route: the OpenAPI document is the whole contract, and
# tests/reliability/test_fuzz_openapi.py fails on any status it does not list.
student_bp = Blueprint("students", __name__, url_prefix="/v1/classes/students")
Service = FromDishka[ClassManagementServiceProtocol]


@student_bp.post("")
@student_bp.post("/")
@idempotent
@documented(404, 409, 413, 415, 422)
@validate_request(CreateStudentRequest)
@validate_response(StudentResponse, 201)
@inject
async def create_student(
    data: CreateStudentRequest, service: Service
) -> tuple[StudentResponse, int, dict[str, str]]:
    context = current_context()
    record = await service.create_student(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        name=data.person_name.to_person_name(),
        email=data.email,
        class_ids=data.class_ids,
    )
    return with_etag(StudentResponse.of(record), 201, location=f"/v1/classes/students/{record.id}")


@student_bp.get("")
@student_bp.get("/")
@documented(404)
@validate_querystring(ListStudentsQuery)
@validate_response(StudentListResponse, 200)
@inject
async def list_students(query_args: ListStudentsQuery, service: Service) -> StudentListResponse:
    page = await service.list_students(
        user_id=current_context().user_id,
        class_id=query_args.class_id,
        limit=query_args.limit,
        offset=query_args.offset,
        filters=query_args.filters(query_args.sort),
    )
    return StudentListResponse.of(page)


@student_bp.get("/<student_id>")
@documented(404)
@validate_response(StudentResponse, 200)
@inject
async def get_student(
    student_id: str, service: Service
) -> tuple[StudentResponse, int, dict[str, str]]:
    record = await service.get_student(
        user_id=current_context().user_id, student_id=parse_uuid(student_id, "student_id")
    )
    return with_etag(StudentResponse.of(record), 200)


@student_bp.put("/<student_id>")
@documented(404, 409, 412, 413, 415)
@validate_request(UpdateStudentRequest)
@validate_response(StudentResponse, 200)
@inject
async def update_student(
    student_id: str, data: UpdateStudentRequest, service: Service
) -> tuple[StudentResponse, int, dict[str, str]]:
    context = current_context()
    name = data.person_name or PersonNamePatch()
    record = await service.update_student(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        student_id=parse_uuid(student_id, "student_id"),
        changes=StudentChanges(
            first_name=name.first_name,
            last_name=name.last_name,
            legal_full_name=name.legal_full_name,
            email=data.email_change,
            add_class_ids=tuple(data.add_class_ids or ()),
            remove_class_ids=tuple(data.remove_class_ids or ()),
        ),
        expected_version=expected_version(),
    )
    return with_etag(StudentResponse.of(record), 200)


@student_bp.delete("/<student_id>")
@documented(404, 412)
@inject
async def delete_student(student_id: str, service: Service) -> Response:
    context = current_context()
    await service.delete_student(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        student_id=parse_uuid(student_id, "student_id"),
        expected_version=expected_version(),
    )
    return Response(status=204)


@student_bp.put("/<student_id>/essays/<essay_id>")
@documented(404, 409, 413, 415)
@validate_response(EssayLinkResponse, 200)
@validate_response(EssayLinkResponse, 201)
@inject
async def associate_essay(
    student_id: str, essay_id: str, service: Service
) -> tuple[EssayLinkResponse, int]:
    context = current_context()
    link, created = await service.associate_essay(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        student_id=parse_uuid(student_id, "student_id"),
        essay_id=parse_uuid(essay_id, "essay_id"),
    )
    return EssayLinkResponse.of(link), 201 if created else 200


@student_bp.delete("/<student_id>/essays/<essay_id>")
@documented(404)
@inject
async def unlink_essay(student_id: str, essay_id: str, service: Service) -> Response:
    """Unlink the essay from the student (404 when the student has no such link)."""
    context = current_context()
    await service.unlink_essay(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        student_id=parse_uuid(student_id, "student_id"),
        essay_id=parse_uuid(essay_id, "essay_id"),
    )
    return Response(status=204)


@student_bp.get("/<student_id>/essays")
@documented(404)
@validate_querystring(PageQuery)
@validate_response(EssayListResponse, 200)
@inject
async def list_student_essays(
    student_id: str, query_args: PageQuery, service: Service
) -> EssayListResponse:
    page = await service.list_student_essays(
        user_id=current_context().user_id,
        student_id=parse_uuid(student_id, "student_id"),
        limit=query_args.limit,
        offset=query_args.offset,
    )
    return EssayListResponse.of(page)


@student_bp.get("/<student_id>/classes")
@documented(404)
@validate_querystring(StudentClassesQuery)
@validate_response(ClassListResponse, 200)
@inject
async def list_student_classes(
    student_id: str, query_args: StudentClassesQuery, service: Service
) -> ClassListResponse:
    """The classes the student is in, as the class list shows them."""
    page = await service.list_student_classes(
        user_id=current_context().user_id,
        student_id=parse_uuid(student_id, "student_id"),
        limit=query_args.limit,
        offset=query_args.offset,
        sort=query_args.sort,
    )
    return ClassListResponse.of(page)
