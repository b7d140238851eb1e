"""Per-request context: caller identity, correlation id, one log line and metrics per request."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from prometheus_client import Counter, Histogram
from quart import Quart, Request, Response, current_app, g, request
from quart_schema.validation import QUART_SCHEMA_QUERYSTRING_ATTRIBUTE
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Rule

from services.class_management_service import metrics
from services.class_management_service.api.authentication import (
    AUTHORIZATION_HEADER,
    USER_HEADER,
    CallerAuthentication,
)
from services.class_management_service.api.etags import not_modified
from services.class_management_service.api.problems import problem_response
from services.class_management_service.exceptions import (
    DependencyUnavailableError,
    DuplicateHeaderError,
    MalformedJsonError,
    ValidationFailedError,
)

logger = logging.getLogger("services.class_management_service.access")

CORRELATION_HEADER = "X-Correlation-ID"
# Headers a request may carry once: with two, which one counts differs between the gateway,
# proxies and this service, which is how identities and preconditions get smuggled.
SINGLE_HEADERS = {
    name.lower(): name
    for name in (
        USER_HEADER,
        AUTHORIZATION_HEADER,
        CORRELATION_HEADER,
        "If-Match",
        "If-None-Match",
        "Idempotency-Key",
    )
}
_JSON_TYPES = ("application/json", "application/problem+json")
# The view attribute ``accepts`` sets: the body media types beyond JSON a route reads.
BODY_TYPES_ATTRIBUTE = "_cms_body_types"
_ViewT = TypeVar("_ViewT", bound=Callable[..., Any])


def accepts(*mimetypes: str) -> Callable[[_ViewT], _ViewT]:
    """A route that reads bodies of ``mimetypes`` besides JSON (others are 415); the
    OpenAPI document lists them."""

    def decorate(view: _ViewT) -> _ViewT:
        setattr(view, BODY_TYPES_ATTRIBUTE, mimetypes)
        return view

    return decorate


def _other_body_types(current: Request) -> tuple[str, ...]:
    """The body media types the request's route reads besides JSON (``accepts``)."""
    if current.url_rule is None:
        return ()
    view = current_app.view_functions[current.url_rule.endpoint]
    return tuple(getattr(view, BODY_TYPES_ATTRIBUTE, ()))


# Statuses without content (RFC 9110): no Content-Type either.
_BODILESS_STATUSES = (204, 304)
_T = TypeVar("_T")


class ServiceRequest(Request):
    """A request whose unparsable JSON body is a MALFORMED_JSON problem, not a bare 400, and
    whose path is routed without trailing slashes: ``/v1/classes/{id}/`` is
    ``/v1/classes/{id}`` (the same answer, no redirect), for every route."""

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(method, scheme, path.rstrip("/") or "/", *args, **kwargs)

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


def unproxied(proxy: _T) -> _T:
    """The object behind one of Quart's context-local proxies (``request``, ``g``).

    Every attribute read through a proxy looks the context variable up again (about 1 µs
    each); the hooks below run on every request and read several, so they look it up once.
    """
    return cast(_T, cast(Any, proxy)._get_current_object())


_RequestMetrics = tuple[Counter, Histogram]
_request_metrics: dict[tuple[str, str, int], _RequestMetrics] = {}


def _metrics_for(method: str, rule: str, status: int) -> _RequestMetrics:
    """The labelled children for one (method, route template, status): looked up once."""
    key = (method, rule, status)
    children = _request_metrics.get(key)
    if children is None:
        children = _request_metrics[key] = (
            metrics.HTTP_REQUESTS.labels(method, rule, str(status)),
            metrics.HTTP_REQUEST_DURATION.labels(method, rule),
        )
    return children


def register_request_hooks(app: Quart, authentication: CallerAuthentication) -> None:
    @app.before_request
    async def _open_request() -> Response | None:
        state = unproxied(g)
        current = unproxied(request)
        state.started = time.perf_counter()
        state.user_id = None
        headers = current.headers
        repeated = _repeated_header(headers)
        if repeated is not None:
            state.correlation_id = uuid.uuid4()
            raise DuplicateHeaderError(f"{repeated} may be sent only once.")
        raw_correlation = headers.get(CORRELATION_HEADER)
        try:
            # Absent means "make one"; present but empty is as invalid as any non-UUID.
            state.correlation_id = (
                uuid.UUID(raw_correlation) if raw_correlation is not None else uuid.uuid4()
            )
        except ValueError:
            state.correlation_id = uuid.uuid4()
            return problem_response(
                400,
                "INVALID_CORRELATION_ID",
                "Invalid correlation id",
                f"{CORRELATION_HEADER} must be a UUID.",
            )
        if not current.path.startswith("/v1/") or current.method == "OPTIONS":
            return None  # OPTIONS says which methods a route has: no identity needed
        state.user_id = authentication.caller(headers)
        _refuse_unknown_query_parameters(current)
        if current.method in ("POST", "PUT", "PATCH") and await _has_body(current):
            others = _other_body_types(current)
            if current.mimetype not in _JSON_TYPES and current.mimetype not in others:
                return problem_response(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Unsupported Media Type",
                    f"Request bodies must be {' or '.join(('application/json', *others))}.",
                )
        return None

    @app.after_request
    async def _close_request(response: Response) -> Response:
        state = unproxied(g)
        current = unproxied(request)
        response = not_modified(response)
        if response.status_code in _BODILESS_STATUSES:
            response.headers.pop("Content-Type", None)
        correlation_id = str(getattr(state, "correlation_id", ""))
        response_headers = response.headers
        response_headers[CORRELATION_HEADER] = correlation_id
        # Responses name children and their e-mail addresses: never kept by a cache, never
        # sniffed into another content type.
        response_headers["Cache-Control"] = "no-store"
        response_headers["X-Content-Type-Options"] = "nosniff"
        rule = _route_label(current)
        method = current.method
        status = response.status_code
        elapsed = time.perf_counter() - getattr(state, "started", time.perf_counter())
        requests_total, duration = _metrics_for(method, rule, status)
        requests_total.inc()
        duration.observe(elapsed)
        code = getattr(state, "problem_code", None) if status >= 400 else None
        logger.info(
            "%s %s %s%s %.1fms",
            method,
            rule,
            status,
            f" {code}" if code else "",
            elapsed * 1000,
            extra={
                "method": method,
                "route": rule,
                "status": status,
                "code": code,
                "duration_ms": round(elapsed * 1000, 2),
                "correlation_id": correlation_id,
                "user_id": getattr(state, "user_id", None),
            },
        )
        return response


def _route_label(current: Request) -> str:
    """The route template that metrics and logs name a request by: one per route whatever
    the trailing slash, and the route of a known path even when its method is not allowed."""
    url_rule: Rule | None = current.url_rule
    error = current.routing_exception
    if url_rule is None and isinstance(error, MethodNotAllowed) and error.valid_methods:
        try:
            url_rule, _ = current_app.create_url_adapter(current).match(  # type: ignore[union-attr]
                current.path, method=next(iter(error.valid_methods)), return_rule=True
            )
        except HTTPException:
            url_rule = None
    if url_rule is None:
        return "<unmatched>"
    return url_rule.rule.rstrip("/") or "/"


def _refuse_unknown_query_parameters(current: Request) -> None:
    """A query parameter the route does not declare is a 400 naming it: ignoring it would
    answer as if a filter (``?name=9A``) had worked. The allowed names are the fields (or
    aliases) of the route's ``validate_querystring`` model; none without one."""
    if not current.args or current.url_rule is None:
        return
    view = current_app.view_functions[current.url_rule.endpoint]
    model = getattr(view, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None)
    allowed = {info.alias or name for name, info in model.model_fields.items()} if model else set()
    unknown = [name for name in current.args if name not in allowed]
    if unknown:
        raise ValidationFailedError(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[
                {
                    "loc": ["query", name],
                    "msg": "Unknown query parameter",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ],
        )


def _repeated_header(headers: Headers) -> str | None:
    """The first of SINGLE_HEADERS that the request carries more than once, if any."""
    seen: set[str] = set()
    for name in headers.keys(lower=True):
        if name in SINGLE_HEADERS:
            if name in seen:
                return SINGLE_HEADERS[name]
            seen.add(name)
    return None


async def _has_body(current: Request) -> bool:
    length = current.content_length
    if length is not None:
        return length > 0
    if "chunked" in current.headers.get("Transfer-Encoding", "").lower():
        return True
    # HTTP/2 and later may send a body without Content-Length: look at it (Quart caches it,
    # and a body over MAX_CONTENT_LENGTH is refused here with 413).
    return bool(await current.get_data())
