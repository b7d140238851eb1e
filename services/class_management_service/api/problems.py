"""Every error leaves the service as RFC 9457 problem details; the mapping lives here, once."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from quart import Quart, Response, g
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from services.class_management_service.api.responses import json_bytes
from services.class_management_service.exceptions import (
    ClassManagementError,
    ValidationFailedError,
)

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://huleedu.dev/problems/"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    411: "LENGTH_REQUIRED",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    431: "HEADERS_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    g.problem_code = code  # for the request's access log line
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "correlation_id": str(getattr(g, "correlation_id", "")),
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json_bytes(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without echoing the input back (it may be huge or sensitive)."""
    return [
        {"loc": [part for part in item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def register_problem_handlers(app: Quart) -> None:
    @app.errorhandler(ClassManagementError)
    async def _domain_error(error: ClassManagementError) -> Response:
        errors = error.errors if isinstance(error, ValidationFailedError) else None
        return problem_response(
            error.status,
            error.code,
            error.title,
            error.detail,
            errors,
            headers=error.response_headers(),
        )

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(error: RequestSchemaValidationError) -> Response:
        cause = error.validation_error
        if isinstance(cause, ValidationError):
            errors = field_errors(cause)
        else:
            errors = [{"loc": [], "msg": str(cause), "type": "value_error"}]
        return problem_response(
            400, "VALIDATION_ERROR", "Invalid request", "The request is not valid.", errors
        )

    @app.errorhandler(RecursionError)
    async def _too_deep(_: RecursionError) -> Response:
        return problem_response(
            400, "MALFORMED_JSON", "Malformed JSON", "The JSON body is nested too deeply."
        )

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "HTTP_ERROR")
        detail = error.description or error.name
        if status == 400 and "json" in (detail or "").lower():
            code = "MALFORMED_JSON"
        headers = {}
        if status == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods or ())  # type: ignore[attr-defined]
        return problem_response(status, code, error.name, detail, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        logger.exception("Unhandled error", exc_info=error)
        return problem_response(
            500, "INTERNAL_ERROR", "Internal error", "An unexpected error occurred."
        )
