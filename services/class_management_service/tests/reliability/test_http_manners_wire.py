"""HTTP manners as a real socket carries them (Quart's test client would add a Content-Type
of its own): a 204 or 304 has neither body nor Content-Type; OPTIONS answers Allow without
an identity; a trailing slash on an item URL is the same answer, not a redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.class_management_service.tests.reliability.conftest import ServedCms
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    user_headers,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(served_cms: ServedCms) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=15) as client:
        yield client


async def test_204_and_304_carry_no_content_type_and_no_body(
    client: httpx.AsyncClient, new_user
) -> None:
    owner = new_user()
    klass = await create_class(client, owner)
    student = await create_student(client, owner)
    for path in (f"/v1/classes/{klass['id']}", f"/v1/classes/students/{student['id']}"):
        unchanged = await client.get(path, headers=user_headers(owner, **{"If-None-Match": "*"}))
        assert unchanged.status_code == 304, unchanged.text
        assert unchanged.headers["ETag"] == '"1"'
        deleted = await client.delete(path, headers=user_headers(owner))
        assert deleted.status_code == 204, deleted.text
        for response in (unchanged, deleted):
            assert "content-type" not in response.headers, dict(response.headers)
            assert response.content == b""


async def test_options_and_trailing_slashes_over_the_wire(
    client: httpx.AsyncClient, new_user
) -> None:
    owner = new_user()
    klass = await create_class(client, owner)
    options = await client.options(f"/v1/classes/{klass['id']}")  # no identity
    assert options.status_code == 200, options.text
    assert {"GET", "PUT", "DELETE", "OPTIONS"} <= {
        method.strip() for method in options.headers["Allow"].split(",")
    }
    slashed = await client.get(f"/v1/classes/{klass['id']}/", headers=user_headers(owner))
    assert slashed.status_code == 200, slashed.text  # httpx follows no redirect by default
    assert slashed.json() == klass
