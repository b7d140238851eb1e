"""docs/asyncapi.json: current, complete, and valid for the AsyncAPI project's own parser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from common_core.events.asyncapi import ASYNCAPI_PATH, HEADERS, asyncapi_document, main
from common_core.events.schemas import render
from common_core.events.topics import TOPICS

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = REPO_ROOT / "tools" / "asyncapi" / "validate.mjs"
PARSER = REPO_ROOT / "tools" / "asyncapi" / "node_modules" / "@asyncapi" / "parser"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    """Run the AsyncAPI parser on ``path``; fail (never skip) if it is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: `make setup` installs it (the nodejs package)")
    if not PARSER.is_dir():
        pytest.fail(f"{PARSER} is missing: run `make setup` (npm ci in tools/asyncapi)")
    return subprocess.run(
        [node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120
    )


def _diagnostics(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _ref(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_the_committed_document_is_what_the_models_generate() -> None:
    assert ASYNCAPI_PATH == REPO_ROOT / "docs" / "asyncapi.json"
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == render(asyncapi_document()), (
        "docs/asyncapi.json is stale; run: uv run python -m common_core.events.asyncapi write"
    )


def test_the_asyncapi_parser_finds_no_error_in_the_committed_document() -> None:
    result = _validate(ASYNCAPI_PATH)

    errors = [d for d in _diagnostics(result) if d["severity"] == "error"]
    assert (result.returncode, errors) == (0, []), result.stderr
    assert "valid AsyncAPI 3.0.0 (10 channels)" in result.stderr


def test_the_parser_rejects_a_broken_document(tmp_path: Path) -> None:
    """The check is not vacuous: a message reference that leads nowhere is an error."""
    document = asyncapi_document()
    channel = next(iter(document["channels"].values()))
    channel["messages"] = {"Gone": {"$ref": "#/components/messages/Gone"}}
    del document["info"]["title"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    result = _validate(path)

    assert result.returncode == 1
    assert [d for d in _diagnostics(result) if d["severity"] == "error"]


def test_every_topic_has_its_channel_key_headers_and_payload() -> None:
    document = asyncapi_document()
    by_address = {channel["address"]: channel for channel in document["channels"].values()}

    assert list(by_address) == [spec.name for spec in TOPICS]
    headers = _ref(document, "#/components/schemas/KafkaHeaders")
    assert set(headers["properties"]) == set(HEADERS) >= {"traceparent", "tracestate"}
    assert headers["required"] == ["event_type", "event_id", "correlation_id"]
    for spec in TOPICS:
        channel = by_address[spec.name]
        name = spec.event_class.__name__
        message = _ref(document, channel["messages"][name]["$ref"])
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
        assert spec.key_field in message["bindings"]["kafka"]["key"]["description"]
        assert message["headers"] == {"$ref": "#/components/schemas/KafkaHeaders"}
        envelope = _ref(document, message["payload"]["$ref"])
        assert _ref(document, envelope["properties"]["data"]["$ref"])["title"] == name
        policy = channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if spec.compacted else ["delete"])
        tombstones = [m for m in channel["messages"] if m.endswith("Tombstone")]
        assert tombstones == ([f"{name}Tombstone"] if spec.compacted else [])


def test_every_operation_sends_its_channels_messages() -> None:
    document = asyncapi_document()

    assert len(document["operations"]) == len(TOPICS)
    for operation in document["operations"].values():
        assert operation["action"] == "send"
        channel = _ref(document, operation["channel"]["$ref"])
        assert [m["$ref"] for m in operation["messages"]] == [
            f"{operation['channel']['$ref']}/messages/{name}" for name in channel["messages"]
        ]


def test_write_writes_the_document(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "asyncapi.json"

    assert main(["write", str(path)]) == 0

    assert json.loads(path.read_text(encoding="utf-8")) == asyncapi_document()
