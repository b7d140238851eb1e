"""JSON bodies encoded once, by pydantic's serializer, straight to bytes.

quart-schema would ``model_dump`` a returned model to Python objects, build a pydantic
``TypeAdapter`` for the headers dict, and hand the objects to the stdlib JSON encoder,
which calls back into Python for every UUID and datetime. Here a returned model (or a
plain dict or list) is serialized in one call to pydantic-core, and the response is built
directly. The JSON is the same document: the same values, keys in declaration order,
compact, non-ASCII as UTF-8. ``validate_response`` still runs (it is a decorator on the
view), so the OpenAPI document and the response validation are unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python
from quart import Quart
from quart.typing import ResponseTypes
from werkzeug.datastructures import Headers

JSON_CONTENT_TYPE = "application/json"

MakeResponse = Callable[[Any], Awaitable[ResponseTypes]]


def json_bytes(value: Any) -> bytes:
    """``value`` (a model, dict or list of JSON-able values, UUIDs, datetimes) as JSON."""
    try:
        if isinstance(value, BaseModel):
            return value.__pydantic_serializer__.to_json(value)
        return to_json(value)
    except PydanticSerializationError:
        # Text that is not valid Unicode (a lone surrogate) cannot be UTF-8: escape it.
        return json.dumps(to_jsonable_python(value)).encode()


def install_response_encoding(app: Quart) -> None:
    """Encode JSON bodies returned by views with :func:`json_bytes`.

    Wraps ``app.make_response`` as quart-schema left it (call this after ``QuartSchema``);
    anything but a model, dict or list body (a Response, text, an error) goes to it as before.
    """
    config = app.config
    if (
        config.get("QUART_SCHEMA_CONVERT_CASING")
        or config.get("QUART_SCHEMA_PYDANTIC_DUMP_OPTIONS")
        or config.get("QUART_SCHEMA_CONVERSION_PREFERENCE") == "msgspec"
    ):
        return  # quart-schema would rename or filter fields: leave the encoding to it
    framework_make_response: MakeResponse = app.make_response
    response_class = app.response_class

    async def make_response(result: Any) -> ResponseTypes:
        status: Any = None
        headers: Any = None
        if type(result) is tuple:
            if len(result) == 3:
                value, status, headers = result
            elif len(result) == 2:
                value, status_or_headers = result
                if isinstance(status_or_headers, Headers | dict | list):  # as Quart reads it
                    headers = status_or_headers
                else:
                    status = status_or_headers
            else:
                return await framework_make_response(result)
        else:
            value = result
        if not isinstance(value, BaseModel | dict | list):
            return await framework_make_response(result)
        response = response_class(json_bytes(value), status=status, mimetype=JSON_CONTENT_TYPE)
        if headers is not None:
            response.headers.update(headers)  # as Quart does: a view may set Content-Type
        return response

    app.make_response = make_response  # type: ignore[method-assign]
