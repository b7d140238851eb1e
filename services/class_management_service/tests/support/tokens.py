"""Bearer tokens for the tests, as the gateway issues them: HS256 with a shared secret,
audience ``huledu-services``, an ``exp`` and the caller in ``sub``."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import httpx
import jwt

TEST_SECRET = "cms-tests-only-secret-0123456789abcdef"
TEST_ISSUER = "huledu-api-gateway"
AUDIENCE = "huledu-services"
JWT_SETTINGS: dict[str, Any] = {
    "AUTH_MODE": "jwt",
    "JWT_SECRET_KEY": TEST_SECRET,
    "JWT_ISSUER": TEST_ISSUER,
}


def claims_for(user_id: str, **overrides: Any) -> dict[str, Any]:
    """Valid claims for ``user_id``; an override of None leaves that claim out."""
    now = int(time.time())
    claims = {"sub": user_id, "aud": AUDIENCE, "iss": TEST_ISSUER, "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def token_for(user_id: str, key: Any = TEST_SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    return jwt.encode(claims_for(user_id, **claims), key, algorithm=algorithm)


def bearer(user_id: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id, **claims)}"}


class BearerFromUserHeader(httpx.Auth):
    """Turns each request's ``X-User-ID`` into a token for that user (and drops the
    header): the tests written for trusted-header mode then call a jwt-mode service as
    the same users, each proven by its token alone."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        user_id = request.headers.pop("X-User-ID", None)
        if user_id is not None:
            request.headers["Authorization"] = f"Bearer {token_for(user_id)}"
        yield request
