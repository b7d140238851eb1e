"""``Idempotency-Key`` on POST: the same key and the same request returns the first response.

The same request means the same method, path and query string and, of a JSON body, the
same parsed document: key order and whitespace do not matter (the fingerprint is of a
canonical serialisation); any other body (a CSV file) byte for byte. A different request
under the same key is 422. While the first request is still running, a second one with the
same key is 409. If the key store is unreachable, a request with a key is refused with 503
IDEMPOTENCY_UNAVAILABLE and ``Retry-After``: it asked for a guarantee the service cannot
give now, and serving it anyway could create twice what a retry meant once. Requests
without a key never touch the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, cast

from dishka import FromDishka
from quart import Response, current_app, g, request
from quart_dishka import inject

from services.class_management_service.domain import (
    Claimed,
    InUse,
    Replay,
    StoredResponse,
    Unavailable,
)
from services.class_management_service.exceptions import (
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
    ValidationFailedError,
)
from services.class_management_service.protocols import IdempotencyStoreProtocol

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
IDEMPOTENT_ATTRIBUTE = "_cms_idempotent"
_REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")

View = Callable[..., Awaitable[Any]]


def _canonical(body: bytes) -> bytes:
    """A JSON body as a canonical JSON text (sorted keys, no whitespace); any other body (a
    CSV file), or a JSON body that does not parse (such a request fails validation and never
    saves its key), as the bytes it is."""
    if not request.is_json:
        return body
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _fingerprint(body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    if request.query_string:  # ?dry_run=true is another request (none: as keys were saved)
        digest.update(b"?" + request.query_string + b"\n")
    digest.update(_canonical(body))
    return digest.hexdigest()


def _replay(stored: StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status)
    for name, value in stored.headers.items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def idempotent(view: View) -> View:
    @wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return await view(*args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise ValidationFailedError(
                f"{IDEMPOTENCY_HEADER} must be 1-{MAX_KEY_LENGTH} printable characters."
            )
        return await _run_once(key, view, args, kwargs)

    setattr(wrapper, IDEMPOTENT_ATTRIBUTE, True)  # the OpenAPI document reads it
    return wrapper


async def _run_once_with(
    key: str,
    view: View,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    store: FromDishka[IdempotencyStoreProtocol],
) -> Any:
    """Run ``view`` for the first request with ``key``; replay or refuse any later one."""
    user_id: str = g.user_id
    fingerprint = _fingerprint(cast(bytes, await request.get_data(as_text=False)))
    claim = await store.claim(user_id, key, fingerprint)
    match claim:
        case Unavailable(reason=reason):
            logger.warning("Idempotency-Key refused, its store is unavailable: %s", reason)
            raise IdempotencyUnavailableError(
                f"{IDEMPOTENCY_HEADER} cannot be honoured now (its store is unavailable); "
                "retry later, or send the request without it."
            )
        case Replay() | InUse() if claim.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                f"{IDEMPOTENCY_HEADER} {key!r} was used with a different request."
            )
        case InUse():
            raise IdempotencyKeyInUseError(
                f"A request with {IDEMPOTENCY_HEADER} {key!r} is still being processed."
            )
        case Replay(response=stored):
            return _replay(stored)
        case Claimed():
            pass  # this request owns the key: run it below
    try:
        response = await current_app.make_response(await view(*args, **kwargs))
    except BaseException:
        await store.release(user_id, key)
        raise
    if response.status_code >= 500:
        await store.release(user_id, key)
        return response
    await store.save(
        user_id,
        key,
        StoredResponse(
            fingerprint=fingerprint,
            status=response.status_code,
            headers={
                name: response.headers[name]
                for name in _REPLAYED_HEADERS
                if name in response.headers
            },
            body=cast(str, await response.get_data(as_text=True)),  # type: ignore[misc]
        ),
    )
    return response


# Dishka passes the request's store (the port, whatever adapter di.py provides).
_run_once = cast(
    Callable[[str, View, tuple[Any, ...], dict[str, Any]], Awaitable[Any]],
    inject(_run_once_with),
)
