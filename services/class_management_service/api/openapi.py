"""The OpenAPI document: what each /v1 route declares, and corrections where quart-schema
cannot say what the service does.

``documented`` declares a route's headers and problem statuses. ``ServiceOpenAPIProvider``
is passed to ``QuartSchema(openapi_provider_class=...)``; each override below fixes one way
the generated document differed from the served API. Everything it adds is derived from the
route table and what each view declares (its response models, its problem statuses,
``@idempotent``), never from a list of paths, so a new route is documented like the others.
Checked by tests/reliability/test_openapi_contract.py (openapi-spec-validator, and a client
generated with openapi-python-client), and fuzzed by test_fuzz_openapi.py, which fails on
any status a route answers but does not document.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from quart_schema import OpenAPIProvider, document_headers, document_response
from quart_schema.casing import snake_to_kebab
from quart_schema.conversion import model_schema
from quart_schema.typing import Model
from quart_schema.validation import QUART_SCHEMA_RESPONSE_ATTRIBUTE, DataSource
from werkzeug.routing import Rule
from werkzeug.routing.converters import BaseConverter, UnicodeConverter

from services.class_management_service.api.authentication import USER_HEADER
from services.class_management_service.api.idempotency import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_ATTRIBUTE,
    REPLAYED_HEADER,
)
from services.class_management_service.api.problems import PROBLEM_CONTENT_TYPE
from services.class_management_service.api.request_context import (
    BODY_TYPES_ATTRIBUTE,
    CORRELATION_HEADER,
)
from services.class_management_service.api_models import ProblemResponse, UserHeaders
from services.class_management_service.config import AuthMode
from services.class_management_service.exceptions import IdempotencyUnavailableError

BEARER_SCHEME = "bearerAuth"

ViewT = TypeVar("ViewT", bound=Callable[..., Any])

# What every /v1 route can answer: 400 (a malformed id, query or header), 401 (no
# X-User-ID), 503 (the database unreachable, or the request over its deadline).
V1_PROBLEM_STATUSES = (400, 401, 503)


def documented(*problem_statuses: int) -> Callable[[ViewT], ViewT]:
    """Document a /v1 route: its headers (``UserHeaders``) and every problem status it can
    answer, ``V1_PROBLEM_STATUSES`` and ``problem_statuses`` (e.g. 404, 412, 413, 415)."""
    statuses = sorted({*V1_PROBLEM_STATUSES, *problem_statuses}, reverse=True)

    def decorate(view: ViewT) -> ViewT:
        for status in statuses:  # from the highest: the document lists them as it did
            view = document_response(ProblemResponse, status)(view)
        return document_headers(UserHeaders)(view)

    return decorate


# Request headers a route reads beyond UserHeaders, each documented where it applies.
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": (
        'The version the change applies to: the ETag of a read (`"3"`, `W/"3"`). Absent or'
        " `*`: any version. Another version (or a tag that is not a version): 412, with the"
        " current ETag when the resource exists."
    ),
    "schema": {"type": "string"},
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": (
        "ETags the caller holds (`*`, or a comma-separated list; weak `W/` tags compare"
        " equal): when one is the current ETag the answer is 304 with that ETag and no body."
    ),
    "schema": {"type": "string"},
}
_IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "1-255 printable characters. The same key and the same JSON (key order and"
        " whitespace do not matter) replays the first response; another body is 422"
        " IDEMPOTENCY_KEY_REUSED, a request with the key still running 409; when the key"
        " store is unavailable, 503 IDEMPOTENCY_UNAVAILABLE with Retry-After."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

# Response headers, in components.headers; each response refers to those it carries.
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    CORRELATION_HEADER: {
        "description": "The request's correlation id: the one sent, or a new one.",
        "schema": {"type": "string", "format": "uuid"},
    },
    "ETag": {
        "description": 'The resource\'s version as a strong entity tag (`"3"`).',
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The URL of the resource just created.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    REPLAYED_HEADER: {
        "description": f"`true` when this is the stored response of an earlier request"
        f" with the same {IDEMPOTENCY_HEADER}.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying (sent with every 503).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {
        "description": "The authentication the service asks for (`Bearer` in jwt mode, the"
        " X-User-ID header in trusted-header mode).",
        "schema": {"type": "string"},
    },
}
_SUCCESS = range(200, 300)


def _response_headers(method: str, status: int, *, versioned: bool, idempotent: bool) -> list[str]:
    """The response headers a response of ``status`` carries (api/etags.py,
    api/idempotency.py, api/request_context.py, the problem handlers)."""
    names = [CORRELATION_HEADER]
    if (versioned and status in _SUCCESS) or status in (304, 412):
        names.append("ETag")
    if status == 201 and method == "post":  # a POST creates at a new URL (a PUT at its own)
        names.append("Location")
    if idempotent and status in _SUCCESS:
        names.append(REPLAYED_HEADER)
    if status == 401:
        names.append("WWW-Authenticate")
    if status == 503:
        names.append("Retry-After")
    return names


def _summary(view: Callable[..., Any]) -> str:
    """A view's summary: ``list_classes`` is "List classes"."""
    return view.__name__.replace("_", " ").capitalize()


class ServiceOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider with the service's real media types, statuses and formats."""

    def schema(self) -> dict[str, Any]:
        """The response-header catalogue, the tags, enums shared, and authentication as
        the app is configured (api/authentication.py).

        jwt mode: the bearer scheme, required by every /v1 operation, and X-User-ID
        optional (when sent, it must be the token's sub). trusted-header mode: X-User-ID
        required, as the routes document it.
        """
        document = super().schema()
        _share_enums(document)
        document["components"]["headers"] = copy.deepcopy(RESPONSE_HEADERS)
        tags = sorted(
            {
                tag
                for item in document["paths"].values()
                for op in item.values()
                for tag in op.get("tags", ())
            }
        )
        document["tags"] = [{"name": tag} for tag in tags]
        if self._app.config.get("AUTH_MODE") != AuthMode.JWT:
            return document
        document["components"]["securitySchemes"] = {
            BEARER_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The gateway's token: aud, exp and a sub naming the caller.",
            }
        }
        for path, item in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for operation in item.values():
                operation["security"] = [{BEARER_SCHEME: []}]
                for parameter in operation.get("parameters", ()):
                    if parameter.get("in") == "header" and parameter["name"] == USER_HEADER:
                        parameter["required"] = False
                        parameter["description"] = "Optional; when sent, the token's sub."
        return document

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str:
        """The view's name (``list_classes``): unique, as the view functions are, and stable
        whatever the path or its trailing-slash twin."""
        return func.__name__

    def build_request_body(
        self, model: type[Model], source: DataSource
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A required body (every route that reads one refuses a request without it), its
        schema a named component."""
        body, components = super().build_request_body(model, source)
        body["required"] = True
        for media in body["content"].values():
            media["schema"] = _named(model, media["schema"], components)
        return body, components

    def build_response_object(
        self, model: type[Model], headers_model: type[Model] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Named component schemas, and problems as ``application/problem+json``.

        quart-schema inlines each model once per operation (a generated client made one
        class per operation for the same body); here each is a component. It documents
        every body as ``application/json``, but a ProblemResponse is served as an RFC 9457
        problem (api/problems.py). Keyed on the model, not the status: the 503 of /healthz
        is a plain JSON HealthResponse.
        """
        response, components = super().build_response_object(model, headers_model)
        for media in response["content"].values():
            media["schema"] = _named(model, media["schema"], components)
        # Its own docstring, or none: an inherited one describes the base class.
        response["description"] = (model.__dict__.get("__doc__") or "").strip()
        if isinstance(model, type) and issubclass(model, ProblemResponse):
            response["content"] = {
                PROBLEM_CONTENT_TYPE: response["content"].pop("application/json")
            }
        return response, components

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """Each operation completed from what its view declares.

        A path is documented without its trailing slash (the service routes both alike, so
        a twin registered with one is the same operation); a summary and the blueprint's
        tag; the body's media types beyond JSON (``accepts``); the 204 of a DELETE
        (quart-schema cannot document a response without a body); If-Match where a 412 is
        listed; If-None-Match and its 304 on a GET whose 200 has a
        version; Idempotency-Key (and its 503) on an ``@idempotent`` view; and the headers
        each response carries.
        """
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        tag = rule.endpoint.rpartition(".")[0]
        completed: dict[str, Any] = {}
        for path, item in paths.items():
            completed[path.rstrip("/") or "/"] = {
                method: _completed(method, operation, view, tag)
                for method, operation in item.items()
            }
        return completed, components

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        """Path ids as UUIDs.

        Ids are plain ``<class_id>`` strings for Quart on purpose (a malformed id is a 400
        problem from api/path_params.py, not a routing 404), so quart-schema sees any
        string; the service accepts only a UUID.
        """
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, UnicodeConverter) and name.endswith("_id"):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

    def build_headers_parameters(
        self, model: type[Model]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Required headers marked ``required: true``.

        quart-schema looks for ``required`` in each header's own schema, where JSON Schema
        never puts it, so every header was shown as optional, ``X-User-ID`` included
        (every /v1 call without it is a 401).
        """
        parameters, components = super().build_headers_parameters(model)
        schema = model_schema(
            model, preference=self._app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"]
        )
        required = {snake_to_kebab(name) for name in schema.get("required", ())}
        for parameter in parameters:
            if parameter["name"] in required:
                parameter["required"] = True
        return parameters, components


def _share_enums(document: dict[str, Any]) -> None:
    """An inline enum that is a named component's enum (``course_codes`` items, written out
    by a ``WithJsonSchema``) becomes a reference to it: one type in a generated client."""
    schemas = document["components"]["schemas"]
    named = {
        (schema.get("type"), tuple(schema["enum"])): name
        for name, schema in schemas.items()
        if "enum" in schema
    }

    def share(node: Any, inside: str | None) -> Any:
        if isinstance(node, list):
            return [share(item, inside) for item in node]
        if not isinstance(node, dict):
            return node
        if "enum" in node and not set(node) - {"type", "enum"}:
            name = named.get((node.get("type"), tuple(node["enum"])))
            if name is not None and name != inside:
                return {"$ref": f"#/components/schemas/{name}"}
        return {key: share(value, inside) for key, value in node.items()}

    for name in list(schemas):
        schemas[name] = share(schemas[name], name)
    document["paths"] = share(document["paths"], None)


def _named(model: Any, schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as a reference to the component named after ``model`` (a pydantic model;
    anything else stays inline)."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return schema
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _without_null_default(parameter: dict[str, Any]) -> dict[str, Any]:
    """An optional header's or query parameter's absent value is not of its type: a string
    schema with ``"default": null`` is invalid OpenAPI, so the default goes."""
    schema = parameter.get("schema", {})
    if "default" not in schema or schema["default"] is not None:
        return parameter
    return {**parameter, "schema": {k: v for k, v in schema.items() if k != "default"}}


def _completed(
    method: str, operation: dict[str, Any], view: Callable[..., Any], tag: str
) -> dict[str, Any]:
    """One operation with its summary, tag, conditional and idempotency headers, 204/304
    responses and response headers (see ServiceOpenAPIProvider.build_paths)."""
    # New containers: quart-schema shares one rule's parameters and responses between its
    # methods.
    operation = {
        **operation,
        "parameters": [_without_null_default(p) for p in operation.get("parameters", ())],
    }
    operation.setdefault("summary", _summary(view))
    if tag:
        operation.setdefault("tags", [tag])
    responses: dict[int, Any] = {
        int(status): dict(response) for status, response in operation["responses"].items()
    }
    models = getattr(view, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
    versioned = any(
        status in _SUCCESS and "version" in getattr(model, "model_fields", {})
        for status, (model, _) in models.items()
    )
    idempotent = getattr(view, IDEMPOTENT_ATTRIBUTE, False)
    if method == "delete":
        responses[204] = {"description": "Deleted"}
    if 412 in responses:
        operation["parameters"].append(dict(_IF_MATCH))
    if method == "get" and versioned:
        operation["parameters"].append(dict(_IF_NONE_MATCH))
        responses[304] = {"description": "Not Modified: If-None-Match names the current ETag"}
    if idempotent:
        operation["parameters"].append(dict(_IDEMPOTENCY_KEY))
    other_types = getattr(view, BODY_TYPES_ATTRIBUTE, ())
    if other_types and "requestBody" in operation:
        body = operation["requestBody"]
        # A body of another media type (a CSV file) is a file, described by the operation.
        operation["requestBody"] = {
            **body,
            "content": {
                **body["content"],
                **{
                    mimetype: {"schema": {"type": "string", "format": "binary"}}
                    for mimetype in other_types
                },
            },
        }
    for status, response in responses.items():
        if not response.get("description"):
            response["description"] = HTTPStatus(status).phrase
        if status >= 400 and "content" in response:
            response["description"] = f"{HTTPStatus(status).phrase} (an RFC 9457 problem)"
        response["headers"] = {
            name: {"$ref": f"#/components/headers/{name}"}
            for name in _response_headers(
                method, status, versioned=versioned, idempotent=idempotent
            )
        }
    if idempotent:
        responses[503]["description"] += f"; {IdempotencyUnavailableError.code} with Retry-After"
    operation["responses"] = dict(sorted(responses.items()))
    return operation
