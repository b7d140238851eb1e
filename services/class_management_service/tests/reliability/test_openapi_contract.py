"""What the OpenAPI document promises, checked against what the service does.

The fuzzing in test_fuzz_openapi.py gates on no 5xx, documented statuses and documented
bodies. The tests below pin what it cannot see for itself, or what quart-schema alone got
wrong and api/openapi.py (ServiceOpenAPIProvider) or api_models.py now corrects: a valid
OpenAPI 3.1 document (openapi-spec-validator) in both AUTH_MODEs, unique operationIds and
each path once (no trailing-slash twins), problems documented as
``application/problem+json``, the 204 of every DELETE, ``X-User-ID`` required, the
conditional and idempotency headers and every response header where they apply, required
request bodies, named component schemas, a summary and tag per operation, ``course_codes``
as exactly one known course, and path ids as UUIDs. test_generated_client.py drives a
client generated from the document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from services.class_management_service.tests.reliability.conftest import (
    ServedCms,
    ServedInMode,
)

pytestmark = pytest.mark.timeout(60)

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def document(served_cms: ServedCms) -> dict[str, Any]:
    response = httpx.get(served_cms.base_url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def v1_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [op for op in operations(document) if op[0].startswith("/v1/")]
    assert len(found) >= 13
    return found


def test_the_document_is_valid_openapi_3_1(served_in_mode: ServedInMode) -> None:
    response = httpx.get(served_in_mode.cms.base_url + "/openapi.json", timeout=10)
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises with the first error
    if served_in_mode.mode == "jwt":
        assert "bearerAuth" in document["components"]["securitySchemes"]


def test_operation_ids_are_unique_and_each_path_is_documented_once(
    document: dict[str, Any],
) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)), ids
    assert {"create_class", "list_classes", "get_class", "update_class"} <= set(ids)
    assert not [path for path in document["paths"] if path != "/" and path.endswith("/")]


def test_every_operation_has_a_summary_and_a_known_tag(document: dict[str, Any]) -> None:
    tags = {tag["name"] for tag in document["tags"]}
    for path, method, operation in operations(document):
        assert operation["summary"], (method, path)
        assert operation["tags"] and set(operation["tags"]) <= tags, (method, path)


def test_request_bodies_are_required_named_components(document: dict[str, Any]) -> None:
    for path, method, operation in v1_operations(document):
        if "requestBody" in operation:
            assert operation["requestBody"]["required"] is True, (method, path)
            content = operation["requestBody"]["content"]
            schema = content["application/json"]["schema"]
            assert schema["$ref"].startswith("#/components/schemas/"), (method, path)
            # A file besides JSON (the class-list import's CSV) is bytes.
            for mimetype, media in content.items():
                if mimetype != "application/json":
                    assert media["schema"] == {"type": "string", "format": "binary"}, mimetype


def test_response_bodies_are_named_components(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                assert "$ref" in media["schema"], (method, path, status)


def _parameter_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation["parameters"] if p["in"] == "header"}


def test_conditional_and_idempotency_headers_are_documented_where_they_apply(
    document: dict[str, Any],
) -> None:
    for path, method, operation in v1_operations(document):
        names = _parameter_names(operation)
        responses = operation["responses"]
        assert ("If-Match" in names) == ("412" in responses), (method, path)
        conditional_get = method == "get" and "ETag" in responses["200"]["headers"]
        assert ("If-None-Match" in names) == conditional_get, (method, path)
        assert ("304" in responses) == conditional_get, (method, path)
        if method == "post":
            assert "Idempotency-Key" in names, path
    item = document["paths"]["/v1/classes/{class_id}"]
    assert "If-None-Match" in _parameter_names(item["get"])
    assert "If-Match" in _parameter_names(item["put"]) & _parameter_names(item["delete"])


def test_response_headers_are_documented_where_they_are_sent(document: dict[str, Any]) -> None:
    catalogue = document["components"]["headers"]
    for path, method, operation in v1_operations(document):
        for status, response in operation["responses"].items():
            headers = {name for name in response["headers"]}
            assert headers <= set(catalogue), (method, path, status)
            assert "X-Correlation-ID" in headers, (method, path, status)
            if status == "201" and method == "post":
                assert {"Location", "ETag", "Idempotent-Replayed"} <= headers, path
            if status in ("304", "412"):
                assert "ETag" in headers, (method, path, status)
            if status == "401":
                assert "WWW-Authenticate" in headers, (method, path)
            if status == "503":
                assert "Retry-After" in headers, (method, path)
    for name, header in catalogue.items():
        assert "default" not in header["schema"], name


def test_every_v1_operation_documents_its_problem_statuses(document: dict[str, Any]) -> None:
    """400 (bad input), 401 (no X-User-ID) and 503 (database down) can answer any /v1 call."""
    for path, method, operation in v1_operations(document):
        assert {"400", "401", "503"} <= set(operation["responses"]), (method, path)
        if "{" in path:
            assert "404" in operation["responses"], (method, path)
        if "requestBody" in operation:
            assert {"413", "415"} <= set(operation["responses"]), (method, path)


def test_problem_responses_are_documented_as_problem_json(document: dict[str, Any]) -> None:
    """Every status >= 400 is an RFC 9457 problem (api/problems.py), not plain JSON."""
    for path, method, operation in v1_operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert "application/problem+json" in response["content"], (method, path, status)


def test_deletes_document_their_204(document: dict[str, Any]) -> None:
    """A successful DELETE is a 204 without a body (quart-schema alone cannot say so)."""
    for path, method, operation in v1_operations(document):
        if method == "delete":
            assert "204" in operation["responses"], path
            assert "content" not in operation["responses"]["204"], path


def _header(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["in"] == "header" and p["name"] == name)


def test_x_correlation_id_is_documented_as_an_optional_uuid(document: dict[str, Any]) -> None:
    for path, method, operation in v1_operations(document):
        schema = _header(operation, "X-Correlation-ID")["schema"]
        assert (schema.get("type"), schema.get("format")) == ("string", "uuid"), (method, path)
        assert "default" not in schema, (method, path)  # an absent header is not null


def test_x_user_id_is_documented_as_required(document: dict[str, Any]) -> None:
    """Every /v1 call without X-User-ID is a 401."""
    for path, method, operation in v1_operations(document):
        assert _header(operation, "X-User-ID").get("required") is True, (method, path)


def test_course_codes_are_documented_as_one_known_course(document: dict[str, Any]) -> None:
    """Exactly one known CourseCode is accepted (400 MULTIPLE_COURSE_ERROR / COURSE_NOT_FOUND)."""
    body = document["paths"]["/v1/classes"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    resolved = document["components"]["schemas"].get(
        schema.get("$ref", "").rsplit("/", 1)[-1], schema
    )
    course_codes = resolved["properties"]["course_codes"]
    assert course_codes.get("maxItems") == 1, course_codes
    assert course_codes["items"] == {"$ref": "#/components/schemas/CourseCode"}, course_codes


def test_path_ids_are_documented_as_uuids(document: dict[str, Any]) -> None:
    """Path ids are plain strings for Quart (a malformed id is a 400), but only UUIDs pass."""
    for path, method, operation in v1_operations(document):
        for parameter in operation["parameters"]:
            if parameter["in"] == "path":
                assert parameter["schema"].get("format") == "uuid", (method, path, parameter)


def test_an_empty_x_correlation_id_is_rejected(served_cms: ServedCms) -> None:
    response = httpx.get(
        served_cms.base_url + "/v1/classes",
        headers={"X-User-ID": f"u-{uuid.uuid4().hex[:8]}", "X-Correlation-ID": ""},
        timeout=10,
    )
    assert response.status_code == 400, response.text


def test_updated_since_accepts_only_a_date_time(served_cms: ServedCms) -> None:
    response = httpx.get(
        served_cms.base_url + "/v1/classes",
        params={"updated_since": "1.5e-3"},
        headers={"X-User-ID": f"u-{uuid.uuid4().hex[:8]}"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
