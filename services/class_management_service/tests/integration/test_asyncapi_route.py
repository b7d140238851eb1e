"""GET /asyncapi.json: the events' AsyncAPI document, served like /openapi.json."""

from __future__ import annotations

import json

from common_core.events.asyncapi import ASYNCAPI_PATH, asyncapi_document
from common_core.events.topics import ALL_TOPICS

from services.class_management_service.tests.support.api import json_of


async def test_the_asyncapi_document_is_served_without_identity(client) -> None:
    response = await client.get("/asyncapi.json")

    document = await json_of(response, 200)
    assert response.headers["Content-Type"].startswith("application/json")
    assert document == asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert {channel["address"] for channel in document["channels"].values()} == set(ALL_TOPICS)
    # The same document as the committed one, which the AsyncAPI parser validates.
    assert document == json.loads(ASYNCAPI_PATH.read_text(encoding="utf-8"))


async def test_the_asyncapi_document_is_not_in_the_openapi_document(client) -> None:
    document = await json_of(await client.get("/openapi.json"), 200)

    assert "/asyncapi.json" not in document["paths"]
