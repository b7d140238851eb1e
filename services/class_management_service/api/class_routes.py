"""Class routes: thin adapters from HTTP to ClassManagementServiceProtocol."""

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
    ClassListResponse,
    ClassResponse,
    CreateClassRequest,
    ListClassesQuery,
    PageQuery,
    ProblemResponse,
    RosterResponse,
    UpdateClassRequest,
    UserHeaders,
)
from services.class_management_service.protocols import ClassManagementServiceProtocol

# Each route documents every problem status it can answer (400 bad input, 401 no
# X-User-ID, 503 database down, ...): the OpenAPI document is the whole contract, and
# tests/reliability/test_fuzz_openapi.py fails on any status it does not list.
class_bp = Blueprint("classes", __name__, url_prefix="/v1/classes")
Service = FromDishka[ClassManagementServiceProtocol]


def _class_response(
    response: ClassResponse, status: int
) -> tuple[ClassResponse, int, dict[str, str]]:
    return response, status, {"ETag": etag_for(response.version)}


@class_bp.post("")
@class_bp.post("/")
@idempotent
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 409)
@document_response(ProblemResponse, 413)
@document_response(ProblemResponse, 415)
@document_response(ProblemResponse, 422)
@document_response(ProblemResponse, 503)
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
    body, status, headers = _class_response(ClassResponse.of(record), 201)
    headers["Location"] = f"/v1/classes/{record.id}"
    return body, status, headers


@class_bp.get("")
@class_bp.get("/")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 503)
@validate_querystring(ListClassesQuery)
@validate_response(ClassListResponse, 200)
@inject
async def list_classes(query_args: ListClassesQuery, service: Service) -> ClassListResponse:
    page = await service.list_classes(
        user_id=current_context().user_id,
        limit=query_args.limit,
        offset=query_args.offset,
        course_code=query_args.course_code,
        updated_since=query_args.updated_since,
    )
    return ClassListResponse.of(page)


@class_bp.get("/<class_id>")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 503)
@validate_response(ClassResponse, 200)
@inject
async def get_class(class_id: str, service: Service) -> tuple[ClassResponse, int, dict[str, str]]:
    record = await service.get_class(
        user_id=current_context().user_id, class_id=parse_uuid(class_id, "class_id")
    )
    return _class_response(ClassResponse.of(record), 200)


@class_bp.put("/<class_id>")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 412)
@document_response(ProblemResponse, 413)
@document_response(ProblemResponse, 415)
@document_response(ProblemResponse, 503)
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
    )
    return _class_response(ClassResponse.of(record), 200)


@class_bp.delete("/<class_id>")
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 412)
@document_response(ProblemResponse, 503)
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
@document_headers(UserHeaders)
@document_response(ProblemResponse, 400)
@document_response(ProblemResponse, 401)
@document_response(ProblemResponse, 404)
@document_response(ProblemResponse, 503)
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
