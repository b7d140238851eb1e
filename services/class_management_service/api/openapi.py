"""The OpenAPI document: what each /v1 route declares, and corrections where quart-schema
cannot say what the service does.

``documented`` declares a route's headers and problem statuses. ``ServiceOpenAPIProvider``
is passed to ``QuartSchema(openapi_provider_class=...)``; each override below fixes one way
the generated document differed from the served API. Both are checked by
tests/reliability/test_openapi_contract.py and fuzzed by test_fuzz_openapi.py, which fails
on any status a route answers but does not document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart_schema import OpenAPIProvider, document_headers, document_response
from quart_schema.casing import snake_to_kebab
from quart_schema.conversion import model_schema
from quart_schema.typing import Model
from werkzeug.routing import Rule
from werkzeug.routing.converters import BaseConverter, UnicodeConverter

from services.class_management_service.api.authentication import USER_HEADER
from services.class_management_service.api.problems import PROBLEM_CONTENT_TYPE
from services.class_management_service.api_models import ProblemResponse, UserHeaders
from services.class_management_service.config import AuthMode

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


class ServiceOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider with the service's real media types, statuses and formats."""

    def schema(self) -> dict[str, Any]:
        """Authentication as the app is configured (api/authentication.py).

        jwt mode: the bearer scheme, required by every /v1 operation, and X-User-ID
        optional (when sent, it must be the token's sub). trusted-header mode: X-User-ID
        required, as the routes document it.
        """
        document = super().schema()
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

    def build_response_object(
        self, model: type[Model], headers_model: type[Model] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Problems as ``application/problem+json``.

        quart-schema documents every body as ``application/json``, but a ProblemResponse is
        served as an RFC 9457 problem (api/problems.py). Keyed on the model, not the status:
        the 503 of /healthz is a plain JSON HealthResponse.
        """
        response, components = super().build_response_object(model, headers_model)
        if isinstance(model, type) and issubclass(model, ProblemResponse):
            response["content"] = {
                PROBLEM_CONTENT_TYPE: response["content"].pop("application/json")
            }
        return response, components

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """The 204 of a DELETE.

        quart-schema cannot document a response without a body, so the 204 every
        successful DELETE answers was missing.
        """
        paths, components = super().build_paths(rule)
        for item in paths.values():
            if "delete" in item:
                # A new dict: quart-schema shares one rule's responses between its methods.
                item["delete"]["responses"] = {
                    204: {"description": "Deleted"},
                    **item["delete"]["responses"],
                }
        return paths, components

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
