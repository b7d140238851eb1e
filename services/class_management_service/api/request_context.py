"""Per-request context: caller identity, correlation id, one log line and metrics per request."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from quart import Quart, Request, Response, g, request

from services.class_management_service import metrics
from services.class_management_service.api.problems import problem_response
from services.class_management_service.exceptions import (
    DependencyUnavailableError,
    MalformedJsonError,
    VersionConflictError,
)

logger = logging.getLogger("services.class_management_service.access")

USER_HEADER = "X-User-ID"
CORRELATION_HEADER = "X-Correlation-ID"
MAX_USER_ID_LENGTH = 255
_JSON_TYPES = ("application/json", "application/problem+json")


class ServiceRequest(Request):
    """A request whose unparsable JSON body is a MALFORMED_JSON problem, not a bare 400."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except UnicodeDecodeError as error:
            # Quart decodes the body outside its own error handling: not UTF-8 is malformed too.
            if silent:
                return None
            return self.on_json_loading_failed(error)

    def on_json_loading_failed(self, error: Exception) -> Any:
        raise MalformedJsonError(f"The body is not valid JSON: {error}")


class ServiceApp(Quart):
    """Quart with a deadline per request: a stuck dependency yields a 503, never a hang."""

    request_class = ServiceRequest

    async def dispatch_request(self, request_context: Any = None) -> Any:
        try:
            async with asyncio.timeout(self.config["REQUEST_TIMEOUT_SECONDS"]):
                return await super().dispatch_request(request_context)
        except TimeoutError as error:
            raise DependencyUnavailableError(
                "The request did not finish in time; a dependency may be unavailable."
            ) from error


@dataclass(frozen=True, slots=True)
class RequestContext:
    user_id: str
    correlation_id: uuid.UUID


def current_context() -> RequestContext:
    """The caller of the current ``/v1`` request (checked before the view runs)."""
    return RequestContext(user_id=g.user_id, correlation_id=g.correlation_id)


def etag_for(version: int) -> str:
    return f'"{version}"'


def expected_version() -> int | None:
    """The version ``If-Match`` demands; None without the header or with ``*``.

    A tag that is not one of our version tags can never match: VersionConflictError.
    """
    if_match = request.if_match
    if not request.headers.get("If-Match") or if_match.star_tag:
        return None
    tags = if_match.as_set(include_weak=True)
    if len(tags) == 1:
        (tag,) = tags
        if tag and tag.isdigit() and len(tag) < 10:
            return int(tag)
    raise VersionConflictError("If-Match does not name a version of this resource.")


def register_request_hooks(app: Quart) -> None:
    @app.before_request
    async def _open_request() -> Response | None:
        g.started = time.perf_counter()
        g.user_id = None
        raw_correlation = request.headers.get(CORRELATION_HEADER)
        try:
            # Absent means "make one"; present but empty is as invalid as any non-UUID.
            g.correlation_id = (
                uuid.UUID(raw_correlation) if raw_correlation is not None else uuid.uuid4()
            )
        except ValueError:
            g.correlation_id = uuid.uuid4()
            return problem_response(
                400,
                "INVALID_CORRELATION_ID",
                "Invalid correlation id",
                f"{CORRELATION_HEADER} must be a UUID.",
            )
        if not request.path.startswith("/v1/"):
            return None
        user_id = (request.headers.get(USER_HEADER) or "").strip()
        if not user_id:
            return problem_response(
                401, "UNAUTHORIZED", "Unauthorized", f"The {USER_HEADER} header is required."
            )
        if len(user_id) > MAX_USER_ID_LENGTH or not user_id.isprintable():
            return problem_response(
                400,
                "INVALID_USER_ID",
                "Invalid user id",
                f"{USER_HEADER} must be at most {MAX_USER_ID_LENGTH} printable characters.",
            )
        g.user_id = user_id
        if request.method in ("POST", "PUT", "PATCH") and await _has_body():
            if request.mimetype not in _JSON_TYPES:
                return problem_response(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Unsupported Media Type",
                    "Request bodies must be application/json.",
                )
        return None

    @app.after_request
    async def _close_request(response: Response) -> Response:
        response.headers[CORRELATION_HEADER] = str(getattr(g, "correlation_id", ""))
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        elapsed = time.perf_counter() - getattr(g, "started", time.perf_counter())
        metrics.HTTP_REQUESTS.labels(request.method, rule, str(response.status_code)).inc()
        metrics.HTTP_REQUEST_DURATION.labels(request.method, rule).observe(elapsed)
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            rule,
            response.status_code,
            elapsed * 1000,
            extra={
                "method": request.method,
                "route": rule,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "correlation_id": str(getattr(g, "correlation_id", "")),
                "user_id": getattr(g, "user_id", None),
            },
        )
        return response


async def _has_body() -> bool:
    length = request.content_length
    if length is not None:
        return length > 0
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return True
    # HTTP/2 and later may send a body without Content-Length: look at it (Quart caches it,
    # and a body over MAX_CONTENT_LENGTH is refused here with 413).
    return bool(await request.get_data())
