"""The AsyncAPI document of the events, as /openapi.json is the API's: no identity needed."""

from __future__ import annotations

from typing import Any

from common_core.events.asyncapi import asyncapi_document
from quart import Blueprint
from quart_schema import hide

asyncapi_bp = Blueprint("asyncapi", __name__)


@asyncapi_bp.get("/asyncapi.json")
@hide
async def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic, generated from common_core's models."""
    return asyncapi_document()
