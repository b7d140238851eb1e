"""A resource's version over HTTP: the ``ETag`` a response carries, the ``If-Match`` a
request demands (optimistic concurrency on PUT and DELETE), the ``If-None-Match`` that
turns a GET of an unchanged resource into a 304."""

from __future__ import annotations

from typing import Protocol, TypeVar

from quart import Response, request


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


# Versions start at 1: a tag that is not one of ours demands this, which never matches, so
# the guarded write fails as for any stale tag and its 412 names the current ETag.
NO_VERSION = 0
_CONDITIONAL_METHODS = ("GET", "HEAD")


def expected_version() -> int | None:
    """The version ``If-Match`` demands; None without the header or with ``*``.

    A tag that is not one of our version tags demands NO_VERSION (a 412 where the resource
    exists, a 404 where it does not).
    """
    if_match = request.if_match
    if not request.headers.get("If-Match") or if_match.star_tag:
        return None
    tags = if_match.as_set(include_weak=True)
    if len(tags) == 1:
        (tag,) = tags
        if tag and tag.isdigit() and len(tag) < 10:
            return int(tag)
    return NO_VERSION


def not_modified(response: Response) -> Response:
    """A 304 with the ETag and no body instead of a GET's 200 whose ETag ``If-None-Match``
    names (or ``*``), by RFC 9110's weak comparison (``W/"3"`` matches ``"3"``); any other
    response as it is."""
    if (
        response.status_code != 200
        or request.method not in _CONDITIONAL_METHODS
        or "If-None-Match" not in request.headers
    ):
        return response
    current, _ = response.get_etag()
    if current is None or not request.if_none_match.contains_weak(current):
        return response
    unchanged = Response(b"", status=304)
    unchanged.headers["ETag"] = response.headers["ETag"]
    return unchanged
