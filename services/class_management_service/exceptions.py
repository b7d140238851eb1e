"""Domain errors. Each has a stable ``code`` and the HTTP status it maps to (in one place)."""

from __future__ import annotations

from typing import Any, ClassVar

# Seconds a 503 asks the client to wait before it retries (the Retry-After header).
RETRY_AFTER_SECONDS = 5


class ClassManagementError(Exception):
    """Base of every error the service raises on purpose."""

    code: ClassVar[str] = "CLASS_MANAGEMENT_ERROR"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Class management error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def response_headers(self) -> dict[str, str]:
        """Headers the problem response carries besides its body (none by default)."""
        return {}


class ValidationFailedError(ClassManagementError):
    code = "VALIDATION_ERROR"
    status = 400
    title = "Invalid request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class CourseNotFoundError(ClassManagementError):
    code = "COURSE_NOT_FOUND"
    status = 400
    title = "Unknown course code"


class MultipleCourseError(ClassManagementError):
    code = "MULTIPLE_COURSE_ERROR"
    status = 400
    title = "A class belongs to exactly one course"


class ClassNotFoundError(ClassManagementError):
    code = "CLASS_NOT_FOUND"
    status = 404
    title = "Class not found"


class ClassArchivedError(ClassManagementError):
    """An archived class keeps its students but gains none."""

    code = "CLASS_ARCHIVED"
    status = 409
    title = "The class is archived"


class ImportInvalidError(ValidationFailedError):
    """Rows of an import are invalid: ``errors`` names each, as ``{row, field, code,
    msg}``; nothing was written."""

    code = "IMPORT_INVALID"
    title = "Invalid import"


class TooManyRowsError(ClassManagementError):
    code = "TOO_MANY_ROWS"
    status = 413
    title = "Too many rows"


class StudentNotFoundError(ClassManagementError):
    code = "STUDENT_NOT_FOUND"
    status = 404
    title = "Student not found"


class StudentAlreadyExistsError(ClassManagementError):
    code = "STUDENT_ALREADY_EXISTS"
    status = 409
    title = "A student with this email already exists"


class EssayAlreadyAssociatedError(ClassManagementError):
    code = "ESSAY_ALREADY_ASSOCIATED"
    status = 409
    title = "The essay belongs to another student"


class EssayLinkNotFoundError(ClassManagementError):
    code = "ESSAY_LINK_NOT_FOUND"
    status = 404
    title = "No such essay link"


class VersionConflictError(ClassManagementError):
    """If-Match named another version: the 412 carries the current ``ETag`` when known
    (``current_version=``), so a client can re-read or retry knowingly."""

    code = "PRECONDITION_FAILED"
    status = 412
    title = "The resource has changed"

    def response_headers(self) -> dict[str, str]:
        version = self.extra.get("current_version")
        return {} if version is None else {"ETag": f'"{version}"'}


class IdempotencyKeyReusedError(ClassManagementError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    title = "Idempotency-Key was used with a different request"


class IdempotencyKeyInUseError(ClassManagementError):
    code = "IDEMPOTENCY_KEY_IN_USE"
    status = 409
    title = "A request with this Idempotency-Key is in progress"


class _RetryLater(ClassManagementError):
    """A 503: the service cannot serve this now; ``Retry-After`` says when to try again."""

    retry_after_seconds: ClassVar[int] = RETRY_AFTER_SECONDS

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class IdempotencyUnavailableError(_RetryLater):
    """A request asked for Idempotency-Key's guarantee and the key store cannot give it:
    refused rather than served without it (a retry after Retry-After is safe)."""

    code = "IDEMPOTENCY_UNAVAILABLE"
    status = 503
    title = "Idempotency-Key cannot be honoured now"


class DependencyUnavailableError(_RetryLater):
    """The database could not be reached, the request ran over its deadline, or rows kept
    changing under it: a retry after Retry-After is safe."""

    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "A dependency is unavailable"


class MalformedJsonError(ClassManagementError):
    code = "MALFORMED_JSON"
    status = 400
    title = "Malformed JSON"


class DuplicateHeaderError(ClassManagementError):
    """A header that must appear once appeared more often: which one would count is
    exactly what a smuggled identity or precondition relies on."""

    code = "DUPLICATE_HEADER"
    status = 400
    title = "A header was sent more than once"


class InvalidUserIdError(ClassManagementError):
    code = "INVALID_USER_ID"
    status = 400
    title = "Invalid user id"


# The challenge of a trusted-header 401: the header a gateway must set, as an auth-scheme.
TRUSTED_HEADER_CHALLENGE = 'X-User-ID realm="huledu"'


class AuthenticationError(ClassManagementError):
    """The caller is not proven: a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750), with
    ``error="invalid_token"`` when a token was given."""

    status = 401
    token_given: ClassVar[bool] = True

    def response_headers(self) -> dict[str, str]:
        if not self.extra.get("challenge", True):
            # trusted-header mode: no token scheme, but every 401 names what it wants
            # (RFC 9110): the header the gateway sets.
            return {"WWW-Authenticate": TRUSTED_HEADER_CHALLENGE}
        if not self.token_given:
            return {"WWW-Authenticate": 'Bearer realm="huledu"'}
        detail = self.detail.replace("\\", "").replace('"', "'")
        return {
            "WWW-Authenticate": (
                f'Bearer realm="huledu", error="invalid_token", error_description="{detail}"'
            )
        }


class AuthenticationRequiredError(AuthenticationError):
    code = "AUTHENTICATION_REQUIRED"
    title = "Authentication required"
    token_given = False


class InvalidTokenError(AuthenticationError):
    code = "INVALID_TOKEN"
    title = "Invalid token"


class TokenExpiredError(AuthenticationError):
    code = "TOKEN_EXPIRED"
    title = "Token expired"


class IdentityMismatchError(AuthenticationError):
    code = "IDENTITY_MISMATCH"
    title = "X-User-ID is not the token's subject"
