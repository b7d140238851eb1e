"""Who is calling: the caller of a ``/v1`` request, by ``AUTH_MODE`` (docs/security.md).

* ``jwt``: ``Authorization: Bearer <token>``, verified by a TokenVerifierProtocol; the
  caller is the token's ``sub``. An ``X-User-ID`` sent as well must name the same user.
* ``trusted-header``: ``X-User-ID``, for deployments where only the gateway reaches the
  service and it overwrites that header.

Every refusal is a domain error (401 or 400) raised before the view runs.
"""

from __future__ import annotations

from werkzeug.datastructures import Headers

from services.class_management_service.config import AuthMode
from services.class_management_service.exceptions import (
    AuthenticationRequiredError,
    IdentityMismatchError,
    InvalidTokenError,
    InvalidUserIdError,
)
from services.class_management_service.protocols import TokenVerifierProtocol

USER_HEADER = "X-User-ID"
AUTHORIZATION_HEADER = "Authorization"
MAX_USER_ID_LENGTH = 255


def is_valid_user_id(value: str) -> bool:
    """A user id (``sub`` or ``X-User-ID``, stripped): non-blank, at most 255 printable
    characters, so that it is stored, compared and logged as it is."""
    return bool(value) and len(value) <= MAX_USER_ID_LENGTH and value.isprintable()


class CallerAuthentication:
    """The one place that decides who the caller of a request is."""

    def __init__(self, mode: AuthMode, verifier: TokenVerifierProtocol | None = None) -> None:
        if mode is AuthMode.JWT and verifier is None:
            raise ValueError("jwt mode needs a token verifier")
        self.mode = mode
        self._verifier = verifier

    def caller(self, headers: Headers) -> str:
        """The caller's user id. Raises AuthenticationRequiredError, InvalidTokenError,
        TokenExpiredError, IdentityMismatchError (401) or InvalidUserIdError (400)."""
        claimed = headers.get(USER_HEADER)
        if self._verifier is None:
            return _trusted_user_id(claimed)
        authorization = headers.get(AUTHORIZATION_HEADER)
        if authorization is None or not authorization.strip():
            raise AuthenticationRequiredError(
                f"A bearer token is required: {AUTHORIZATION_HEADER}: Bearer <token>."
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidTokenError(f"{AUTHORIZATION_HEADER} must be 'Bearer <token>'.")
        subject = self._verifier.verify(token.strip()).strip()
        if not is_valid_user_id(subject):
            raise InvalidTokenError(
                f"The token's sub must be 1-{MAX_USER_ID_LENGTH} printable characters."
            )
        if claimed is not None and claimed.strip() != subject:
            raise IdentityMismatchError(f"{USER_HEADER} must be the token's sub when sent.")
        return subject


def _trusted_user_id(claimed: str | None) -> str:
    user_id = (claimed or "").strip()
    if not user_id:
        raise AuthenticationRequiredError(f"The {USER_HEADER} header is required.", challenge=False)
    if not is_valid_user_id(user_id):
        raise InvalidUserIdError(
            f"{USER_HEADER} must be at most {MAX_USER_ID_LENGTH} printable characters."
        )
    return user_id
