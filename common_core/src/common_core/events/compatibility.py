"""Does a new JSON Schema of an event break consumers of the old one?

Within v1 an event may only change additively. Two directions are checked:

* a **new reader** must accept every message that was valid before (messages already on
  the topics, and those of producers not yet upgraded): no new required field, no type,
  enum or constraint narrowed;
* an **old reader** must accept every message that is valid now: no field removed or
  renamed (a reader keeps its name), none made optional, no type widened beyond what the
  old schema accepts. A new optional field is fine (readers ignore fields they do not
  know), and so is a new value of an *open* enum (one whose schema also accepts any
  string, as course codes are).

The checker walks ``properties``, ``required``, ``type``, ``enum``/``const``, ``anyOf``/
``oneOf``, ``items``, ``format`` and the string, number and array bounds, following local
``$ref``s. It reads the subset of JSON Schema that pydantic writes; a construct it does not
read (``allOf`` with several members, ``not``, ``if``) is not compared.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Break", "BreakKind", "breaking_changes", "breaking_changes_between_sets"]

BreakKind = Literal["removed", "required", "narrowed", "widened"]

Schema = Mapping[str, Any]

_MAX_DEPTH = 64
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")


@dataclass(frozen=True, slots=True)
class Break:
    """One change that would break a consumer: its kind, where, and why."""

    kind: BreakKind
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


def breaking_changes(old: Schema, new: Schema, *, name: str = "") -> list[Break]:
    """Every change from ``old`` to ``new`` (two root schemas) that breaks a consumer.

    ``name`` prefixes each break's path. An empty list means ``new`` is compatible.
    """
    found = [*_Walk(old, new, "new").compare(new, old, name or "$")]
    found += _Walk(old, new, "old").compare(old, new, name or "$")
    return sorted(set(found), key=lambda b: (b.path, b.kind, b.detail))


def breaking_changes_between_sets(
    old: Mapping[str, Schema], new: Mapping[str, Schema]
) -> list[Break]:
    """:func:`breaking_changes` of every schema in ``old`` (by name) against ``new``.

    A schema in ``old`` with no counterpart in ``new`` is a removed event.
    """
    found: list[Break] = []
    for name in sorted(old):
        if name not in new:
            found.append(Break("removed", name, "the event's schema is gone"))
        else:
            found += breaking_changes(old[name], new[name], name=name)
    return found


class _Walk:
    """One direction: does the ``wide`` schema accept every value the ``narrow`` one does?

    ``reader`` says which side is the reader: ``"new"`` (new reader, old messages) or
    ``"old"`` (old reader, new messages); it decides how a gap is reported.
    """

    def __init__(self, old_root: Schema, new_root: Schema, reader: Literal["new", "old"]) -> None:
        self._reader = reader
        self._wide_root, self._narrow_root = (
            (new_root, old_root) if reader == "new" else (old_root, new_root)
        )

    def compare(self, wide: Schema, narrow: Schema, path: str, depth: int = 0) -> Iterator[Break]:
        if depth > _MAX_DEPTH:
            return
        wide_branches = _branches(wide, self._wide_root)
        for branch in _branches(narrow, self._narrow_root):
            attempts = [
                list(self._branch(candidate, branch, path, depth)) for candidate in wide_branches
            ]
            if any(not problems for problems in attempts):
                continue
            same_type = [
                problems
                for candidate, problems in zip(wide_branches, attempts, strict=True)
                if _same_kind(candidate, branch)
            ]
            if same_type:
                yield from min(same_type, key=len)
            else:
                yield self._type_gap(path, f"a {_describe(branch)}")

    def _type_gap(self, path: str, what: str) -> Break:
        """``what`` (a noun phrase: a value the narrow side allows) the wide side rejects."""
        if self._reader == "new":
            return Break("narrowed", path, f"{what} is no longer accepted; older messages hold it")
        return Break("widened", path, f"{what} is not accepted by older readers")

    def _branch(self, wide: Schema, narrow: Schema, path: str, depth: int) -> Iterator[Break]:
        if not wide.get("type") and "enum" not in wide and "const" not in wide:
            return  # accepts anything
        if not _same_kind(wide, narrow):
            yield self._type_gap(path, f"a {_describe(narrow)}")
            return
        values = _values(narrow)
        if values is not None:
            rejected = [value for value in values if not _accepts_value(wide, value)]
            if rejected:
                yield self._type_gap(path, f"the value(s) {rejected!r}")
            return
        if _values(wide) is not None:
            yield self._type_gap(path, f"a {_describe(narrow)} outside {_values(wide)!r}")
            return
        yield from self._bounds(wide, narrow, path)
        kind = narrow.get("type")
        if kind == "array":
            yield from self.compare(
                wide.get("items", {}), narrow.get("items", {}), f"{path}[]", depth + 1
            )
        elif kind == "object":
            yield from self._object(wide, narrow, path, depth)

    def _bounds(self, wide: Schema, narrow: Schema, path: str) -> Iterator[Break]:
        for key in ("format", "pattern"):
            if key in wide and wide[key] != narrow.get(key):
                yield self._type_gap(path, f"a value not of {key} {wide[key]!r}")
        for key in _LOWER_BOUNDS:
            if wide.get(key, -math.inf) > narrow.get(key, -math.inf):
                yield self._type_gap(path, f"a value below {key} {wide[key]}")
        for key in _UPPER_BOUNDS:
            if wide.get(key, math.inf) < narrow.get(key, math.inf):
                yield self._type_gap(path, f"a value above {key} {wide[key]}")

    def _object(self, wide: Schema, narrow: Schema, path: str, depth: int) -> Iterator[Break]:
        wide_props: Mapping[str, Schema] = wide.get("properties", {})
        narrow_props: Mapping[str, Schema] = narrow.get("properties", {})
        narrow_required = set(narrow.get("required", ()))
        for field in wide.get("required", ()):
            if field in narrow_required:
                continue
            if self._reader == "new":
                yield Break(
                    "required", f"{path}.{field}", "a new required field; older messages lack it"
                )
            elif field in narrow_props:
                yield Break(
                    "removed", f"{path}.{field}", "no longer required; older readers need it"
                )
        if self._reader == "old":
            for field in wide_props:
                if field not in narrow_props:
                    yield Break("removed", f"{path}.{field}", "field removed or renamed")
        for field, narrow_field in narrow_props.items():
            if field in wide_props:
                yield from self.compare(
                    wide_props[field], narrow_field, f"{path}.{field}", depth + 1
                )
            elif wide.get("additionalProperties") is False:
                yield self._type_gap(f"{path}.{field}", "this field")


def _resolve(node: Schema, root: Schema) -> Schema:
    for _ in range(_MAX_DEPTH):
        ref = node.get("$ref")
        if ref is None:
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1:
                node = all_of[0]
                continue
            return node
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise ValueError(f"only local $refs can be compared, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    raise ValueError("$ref chain too long")


def _branches(node: Schema, root: Schema) -> list[Schema]:
    """The alternatives a schema accepts, one JSON type each."""
    node = _resolve(node, root)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives:
        return [branch for member in alternatives for branch in _branches(member, root)]
    kind = node.get("type")
    if isinstance(kind, list):
        return [{**node, "type": single} for single in kind]
    if kind is None and _values(node) is not None:
        kinds = sorted({_json_type(value) for value in _values(node) or ()})
        return [{**node, "type": single} for single in kinds]
    return [node]


def _values(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _same_kind(wide: Schema, narrow: Schema) -> bool:
    wide_type, narrow_type = wide.get("type"), narrow.get("type")
    if not wide_type:
        return True
    return wide_type == narrow_type or (wide_type == "number" and narrow_type == "integer")


def _accepts_value(wide: Schema, value: Any) -> bool:
    allowed = _values(wide)
    if allowed is not None:
        return value in allowed
    if wide.get("type") and not _same_kind(wide, {"type": _json_type(value)}):
        return False
    if isinstance(value, str):
        if len(value) < wide.get("minLength", 0) or len(value) > wide.get("maxLength", math.inf):
            return False
        pattern = wide.get("pattern")
        return pattern is None or re.search(pattern, value) is not None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return bool(
            wide.get("minimum", -math.inf) <= value <= wide.get("maximum", math.inf)
            and wide.get("exclusiveMinimum", -math.inf) < value
            and value < wide.get("exclusiveMaximum", math.inf)
        )
    return True


def _describe(branch: Schema) -> str:
    values = _values(branch)
    kind = branch.get("type", "value")
    return f"{kind} in {values!r}" if values is not None else str(kind)
