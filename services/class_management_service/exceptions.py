"""Domain errors. Each has a stable ``code`` and the HTTP status it maps to (in one place)."""

from __future__ import annotations

from typing import Any, ClassVar


class ClassManagementError(Exception):
    """Base of every error the service raises on purpose."""

    code: ClassVar[str] = "CLASS_MANAGEMENT_ERROR"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Class management error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


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
    code = "PRECONDITION_FAILED"
    status = 412
    title = "The resource has changed"


class IdempotencyKeyReusedError(ClassManagementError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
    title = "Idempotency-Key was used with a different request"


class IdempotencyKeyInUseError(ClassManagementError):
    code = "IDEMPOTENCY_KEY_IN_USE"
    status = 409
    title = "A request with this Idempotency-Key is in progress"


class DependencyUnavailableError(ClassManagementError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    title = "A dependency is unavailable"


class MalformedJsonError(ClassManagementError):
    code = "MALFORMED_JSON"
    status = 400
    title = "Malformed JSON"
