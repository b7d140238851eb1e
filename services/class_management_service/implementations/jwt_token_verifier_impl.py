"""Bearer tokens with PyJWT: verifying the gateway's (``serve`` in jwt mode) and issuing
development ones (the ``token`` command).

The key is chosen by the service from the algorithm, never taken from the token: HS* with
``JWT_SECRET_KEY``, RS*/PS*/ES* with ``JWT_PUBLIC_KEY``, and only for algorithms on the
``JWT_ALGORITHMS`` allow-list, so neither ``alg: none`` nor a public key used as an HMAC
secret can pass.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from services.class_management_service.config import (
    ENV_PREFIX,
    HMAC_ALGORITHMS,
    PublicKey,
    Settings,
    public_key_for,
)
from services.class_management_service.exceptions import InvalidTokenError, TokenExpiredError

# A gateway's token is a few hundred bytes; anything far longer is refused unparsed.
MAX_TOKEN_LENGTH = 8192
_REQUIRED_CLAIMS = ["exp", "sub"]


class JwtTokenVerifierImpl:
    """TokenVerifierProtocol with PyJWT, configured by the ``JWT_*`` settings."""

    def __init__(self, settings: Settings) -> None:
        self._keys: dict[str, str | PublicKey] = {}
        for algorithm in settings.JWT_ALGORITHMS:
            if algorithm in HMAC_ALGORITHMS:
                if settings.JWT_SECRET_KEY is not None:
                    self._keys[algorithm] = settings.JWT_SECRET_KEY.get_secret_value()
            elif settings.JWT_PUBLIC_KEY is not None:
                self._keys[algorithm] = public_key_for(settings.JWT_PUBLIC_KEY, algorithm)
        self._audience = settings.JWT_AUDIENCE
        self._issuer = settings.JWT_ISSUER
        self._leeway = settings.JWT_LEEWAY_SECONDS

    def verify(self, token: str) -> str:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError(f"The token is longer than {MAX_TOKEN_LENGTH} characters.")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise InvalidTokenError("The bearer token is not a JWT.") from None
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            raise InvalidTokenError("The token's signing algorithm is not accepted.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpiredError("The token has expired.") from None
        except jwt.PyJWTError as error:
            raise InvalidTokenError(_reason(error)) from None
        subject = claims["sub"]
        if not isinstance(subject, str):  # PyJWT checks a present sub's type; be sure
            raise InvalidTokenError("The token's sub must be a string.")
        return subject


def _reason(error: jwt.PyJWTError) -> str:
    """What was wrong, in our words (PyJWT's messages may quote the token's content)."""
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.InvalidSignatureError, "The token's signature does not verify."),
        (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat in the future)."),
        (jwt.InvalidAudienceError, "The token is not meant for this service (aud)."),
        (jwt.InvalidIssuerError, "The token's issuer is not accepted (iss)."),
        (jwt.MissingRequiredClaimError, "The token lacks a required claim (exp, sub, aud)."),
        (jwt.exceptions.InvalidSubjectError, "The token's sub must be a string."),
        (jwt.InvalidAlgorithmError, "The token's signing algorithm is not accepted."),
    ]
    for kind, reason in reasons:
        if isinstance(error, kind):
            return reason
    return "The bearer token is malformed."


def issue_token(settings: Settings, user_id: str, ttl_seconds: int) -> str:
    """A token for ``user_id`` signed with ``JWT_SECRET_KEY``, as the gateway would issue it
    (development and tests). Raises ValueError when there is no HMAC algorithm or secret."""
    algorithm = next((a for a in settings.JWT_ALGORITHMS if a in HMAC_ALGORITHMS), None)
    if algorithm is None or settings.JWT_SECRET_KEY is None:
        raise ValueError(
            f"no {ENV_PREFIX}JWT_SECRET_KEY (with an HS* algorithm in {ENV_PREFIX}JWT_ALGORITHMS)"
            " is configured: tokens are signed with it. Set it to the gateway's secret, or"
            f" send X-User-ID to a service in {ENV_PREFIX}AUTH_MODE=trusted-header."
        )
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "aud": settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if settings.JWT_ISSUER:
        claims["iss"] = settings.JWT_ISSUER
    return jwt.encode(claims, settings.JWT_SECRET_KEY.get_secret_value(), algorithm=algorithm)
