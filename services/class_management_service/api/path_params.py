"""Path parameters arrive as text so that a malformed id is a 400, not a routing 404."""

from __future__ import annotations

import uuid

from services.class_management_service.exceptions import ValidationFailedError


def parse_uuid(value: str, name: str) -> uuid.UUID:
    try:
        if len(value) > 64:
            raise ValueError
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailedError(
            f"{name} must be a UUID.",
            errors=[
                {
                    "loc": ["path", name],
                    "msg": "Input should be a valid UUID",
                    "type": "uuid_parsing",
                }
            ],
        ) from None
