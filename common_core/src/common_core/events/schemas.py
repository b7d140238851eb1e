"""The JSON Schema of every event's message, and the committed copies consumers build on.

Each schema describes one topic's message value: the :class:`EventEnvelope` with its
``data``, as pydantic validates it (the reader's contract). The committed copies in
``common_core/schemas/`` are the v1 contract; a test keeps them equal to the models, and
another fails when a change would break a consumer of them
(:mod:`common_core.events.compatibility`).

    python -m common_core.events.schemas write [DIR]   # (re)write the files
    python -m common_core.events.schemas check [DIR]   # exit 1 if stale or breaking

``write`` refuses a breaking change unless given ``--allow-breaking`` (a new major version
of the events, with new topics, is the way to break a contract).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common_core.events.compatibility import Break, breaking_changes_between_sets
from common_core.events.envelope import envelope_class
from common_core.events.topics import TOPICS, TopicSpec

__all__ = [
    "SCHEMA_DIR",
    "committed_schemas",
    "current_schemas",
    "envelope_schema",
    "render",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"
"""``common_core/schemas`` of the source tree, where the committed schemas are."""


def envelope_schema(spec: TopicSpec) -> dict[str, Any]:
    """The JSON Schema of a message value on ``spec``'s topic (validation mode)."""
    schema = envelope_class(spec.event_class).model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{spec.event_class.__name__}.json",
        "description": (
            f"A message on {spec.name}: an EventEnvelope whose event_type is {spec.name!r} "
            f"and whose data is a {spec.event_class.__name__}."
        ),
        **{key: value for key, value in schema.items() if key != "description"},
    }


def current_schemas() -> dict[str, dict[str, Any]]:
    """Event class name -> the schema its models generate now, in registry order."""
    return {spec.event_class.__name__: envelope_schema(spec) for spec in TOPICS}


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema: stable, indented JSON ending in a newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def committed_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """Event class name -> the schema committed in ``directory`` (``<name>.json``)."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def _stale(directory: Path) -> list[str]:
    current = {f"{name}.json": render(schema) for name, schema in current_schemas().items()}
    found = {path.name: path.read_text(encoding="utf-8") for path in directory.glob("*.json")}
    return sorted(
        name for name in current.keys() | found.keys() if current.get(name) != found.get(name)
    )


def _breaks(directory: Path) -> list[Break]:
    return breaking_changes_between_sets(committed_schemas(directory), current_schemas())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common_core.events.schemas")
    parser.add_argument("command", choices=("write", "check"))
    parser.add_argument("directory", nargs="?", type=Path, default=SCHEMA_DIR)
    parser.add_argument("--allow-breaking", action="store_true")
    args = parser.parse_args(argv)
    directory: Path = args.directory
    breaks = _breaks(directory) if directory.is_dir() else []
    for found in breaks:
        print(f"breaking: {found}", file=sys.stderr)
    if args.command == "check":
        stale = _stale(directory) if directory.is_dir() else ["(no directory)"]
        for name in stale:
            print(f"stale: {directory / name}", file=sys.stderr)
        return 1 if breaks or stale else 0
    if breaks and not args.allow_breaking:
        print("not written: the change breaks consumers (see above)", file=sys.stderr)
        return 1
    directory.mkdir(parents=True, exist_ok=True)
    current = current_schemas()
    for path in directory.glob("*.json"):
        if path.stem not in current:
            path.unlink()
    for name, schema in current.items():
        (directory / f"{name}.json").write_text(render(schema), encoding="utf-8")
    print(f"wrote {len(current)} schemas to {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
