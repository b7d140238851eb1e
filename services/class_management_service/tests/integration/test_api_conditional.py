"""Conditional requests through the real app: If-None-Match on a GET of one class or
student (304 with its ETag, no body), and the current ETag on every 412 of If-Match."""

from __future__ import annotations

import pytest

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    etag,
    get_ok,
    json_of,
    problem_of,
)


async def _resources(client, headers) -> list[tuple[str, dict]]:
    klass = await create_class(client, headers)
    student = await create_student(client, headers)
    return [
        (f"/v1/classes/{klass['id']}", klass),
        (f"/v1/classes/students/{student['id']}", student),
    ]


@pytest.mark.parametrize(
    "if_none_match",
    ['"1"', 'W/"1"', "*", '"7", "1"', '"7",W/"1"', '  "1"  '],
)
async def test_a_matching_if_none_match_is_304_with_the_etag_and_no_body(
    client, headers, if_none_match
) -> None:
    for path, _ in await _resources(client, headers):
        response = await client.get(path, headers={**headers, "If-None-Match": if_none_match})
        assert response.status_code == 304, (path, await response.get_data())
        assert response.headers["ETag"] == etag(1)
        assert await response.get_data() == b""
        assert response.headers["X-Correlation-ID"] == headers["X-Correlation-ID"]


@pytest.mark.parametrize("if_none_match", ['"2"', 'W/"2"', '"abc"', "garbage", '"1'])
async def test_another_if_none_match_is_a_full_200(client, headers, if_none_match) -> None:
    for path, record in await _resources(client, headers):
        response = await client.get(path, headers={**headers, "If-None-Match": if_none_match})
        assert await json_of(response, 200) == record
        assert response.headers["ETag"] == etag(1)


async def test_after_a_change_the_old_etag_no_longer_matches(client, headers) -> None:
    klass = await create_class(client, headers)
    path = f"/v1/classes/{klass['id']}"
    await json_of(await client.put(path, json={"name": "renamed"}, headers=headers), 200)
    response = await client.get(path, headers={**headers, "If-None-Match": etag(1)})
    assert (await json_of(response, 200))["name"] == "renamed"
    assert response.headers["ETag"] == etag(2)
    again = await client.get(path, headers={**headers, "If-None-Match": etag(2)})
    assert again.status_code == 304


async def test_if_none_match_does_not_hide_a_404(client, headers) -> None:
    path = "/v1/classes/00000000-0000-0000-0000-000000000000"
    response = await client.get(path, headers={**headers, "If-None-Match": "*"})
    await problem_of(response, 404, "CLASS_NOT_FOUND")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("if_match", [etag(2), etag(0), '"abc"', "garbage"])
async def test_a_412_carries_the_current_etag(client, headers, method, if_match) -> None:
    for path, record in await _resources(client, headers):
        body = {"email": "a@b.se"} if "students" in path else {"name": "renamed"}
        response = await client.open(
            path,
            method=method,
            json=body if method == "PUT" else None,
            headers={**headers, "If-Match": if_match},
        )
        await problem_of(response, 412, "PRECONDITION_FAILED")
        assert response.headers["ETag"] == etag(record["version"]), path
        assert await get_ok(client, path, headers) == record
