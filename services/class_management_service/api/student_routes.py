"""Student and essay-link routes: thin adapters from HTTP to ClassManagementServiceProtocol."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import (
    document_headers,
    document_response,
    validate_querystring,
    validate_request,
    validate_response,
)

from services.class_management_service.api.idempotency import idempotent
from services.class_management_service.api.path_params import parse_uuid
from services.class_management_service.api.request_context import (
    current_context,
    etag_for,
    expected_version,
)
from services.class_management_service.api_models import (
    CreateStudentRequest,
    EssayLinkResponse,
    EssayListResponse,
    ListStudentsQuery,
    ProblemResponse,
    StudentListResponse,
    StudentResponse,
    UpdateStudentRequest,
    UserHeaders,
)
from services.class_management_service.domain import StudentChanges
from services.class_management_service.protocols import ClassManagementServiceProtocol

# Each route documents every problem status it can answer (400 bad input, 401 no
# X-User-ID, 503 database down, ...): the OpenAPI document is the whole contract, and
# tests/reliability/test_fuzz_openapi.py fails on any status it does not list.
student_bp = Blueprint("students", __name__, url_prefix="/v1/classes/students")
Service = FromDishka[ClassManagementServiceProtocol]


def _student_response(
    response: StudentResponse, status: int
) -> tuple[StudentResponse, int, dict[str, str]]:
    return response, status, {"ETag": etag_for(response.version)}


@student_bp.post("")
@student_bp.post("/")
@idempotent
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 409)
@document_response(ProblemResponse, 413)
@document_response(ProblemResponse, 415)
@document_response(ProblemResponse, 422)
@document_response(ProblemResponse, 503)
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
    body, status, headers = _student_response(StudentResponse.of(record), 201)
    headers["Location"] = f"/v1/classes/students/{record.id}"
    return body, status, headers


@student_bp.get("")
@student_bp.get("/")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 503)
@validate_querystring(ListStudentsQuery)
@validate_response(StudentListResponse, 200)
@inject
async def list_students(query_args: ListStudentsQuery, service: Service) -> StudentListResponse:
    page = await service.list_students(
        user_id=current_context().user_id,
        class_id=query_args.class_id,
        limit=query_args.limit,
        offset=query_args.offset,
    )
    return StudentListResponse.of(page)


@student_bp.get("/<student_id>")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 503)
@validate_response(StudentResponse, 200)
@inject
async def get_student(
    student_id: str, service: Service
) -> tuple[StudentResponse, int, dict[str, str]]:
    record = await service.get_student(
        user_id=current_context().user_id, student_id=parse_uuid(student_id, "student_id")
    )
    return _student_response(StudentResponse.of(record), 200)


@student_bp.put("/<student_id>")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 409)
@document_response(ProblemResponse, 412)
@document_response(ProblemResponse, 413)
@document_response(ProblemResponse, 415)
@document_response(ProblemResponse, 503)
@validate_request(UpdateStudentRequest)
@validate_response(StudentResponse, 200)
@inject
async def update_student(
    student_id: str, data: UpdateStudentRequest, service: Service
) -> tuple[StudentResponse, int, dict[str, str]]:
    context = current_context()
    name = data.person_name.to_person_name() if data.person_name else None
    record = await service.update_student(
        user_id=context.user_id,
        correlation_id=context.correlation_id,
        student_id=parse_uuid(student_id, "student_id"),
        changes=StudentChanges(
            first_name=name.first_name if name else None,
            last_name=name.last_name if name else None,
            legal_full_name=name.legal_full_name if name else None,
            email=data.email,
            add_class_ids=tuple(data.add_class_ids or ()),
            remove_class_ids=tuple(data.remove_class_ids or ()),
        ),
        expected_version=expected_version(),
    )
    return _student_response(StudentResponse.of(record), 200)


@student_bp.delete("/<student_id>")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 412)
@document_response(ProblemResponse, 503)
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
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 409)
@document_response(ProblemResponse, 413)
@document_response(ProblemResponse, 415)
@document_response(ProblemResponse, 503)
@validate_response(EssayLinkResponse, 200)
@validate_response(EssayLinkResponse, 201)
@inject
async def associate_essay(
    student_id: str, essay_id: str, service: Service
) -> tuple[EssayLinkResponse, int]:
    link, created = await service.associate_essay(
        user_id=current_context().user_id,
        student_id=parse_uuid(student_id, "student_id"),
        essay_id=parse_uuid(essay_id, "essay_id"),
    )
    return EssayLinkResponse.of(link), 201 if created else 200


@student_bp.get("/<student_id>/essays")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 503)
@validate_response(EssayListResponse, 200)
@inject
async def list_student_essays(student_id: str, service: Service) -> EssayListResponse:
    links = await service.list_student_essays(
        user_id=current_context().user_id, student_id=parse_uuid(student_id, "student_id")
    )
    return EssayListResponse(essays=[EssayLinkResponse.of(link) for link in links])
