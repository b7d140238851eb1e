"""A resource's version over HTTP: the ``ETag`` a response carries, the ``If-Match`` a
request demands (optimistic concurrency on PUT and DELETE)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from quart import request

from services.class_management_service.exceptions import VersionConflictError


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


VersionedT = TypeVar("VersionedT", bound=Versioned)


def etag_for(version: int) -> str:
    return f'"{version}"'


def with_etag(
    body: VersionedT, status: int, location: str | None = None
) -> tuple[VersionedT, int, dict[str, str]]:
    """A view's result whose ``ETag`` names ``body``'s version (and ``Location``, if given,
    the URL of a resource just created)."""
    headers = {"ETag": etag_for(body.version)}
    if location is not None:
        headers["Location"] = location
    return body, status, headers


def expected_version() -> int | None:
    """The version ``If-Match`` demands; None without the header or with ``*``.

    A tag that is not one of our version tags can never match: VersionConflictError.
    """
    if_match = request.if_match
    if not request.headers.get("If-Match") or if_match.star_tag:
        return None
    tags = if_match.as_set(include_weak=True)
    if len(tags) == 1:
        (tag,) = tags
        if tag and tag.isdigit() and len(tag) < 10:
            return int(tag)
    raise VersionConflictError("If-Match does not name a version of this resource.")
