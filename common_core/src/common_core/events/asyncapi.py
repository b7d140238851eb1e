"""The AsyncAPI 3.0 document of every topic, generated from the same models as the messages.

For each topic of :data:`~common_core.events.topics.TOPICS`: a channel (its address, and for
a state topic ``cleanup.policy=compact``), the message with its Kafka key (the aggregate id),
its headers and its payload (the envelope with its ``data``), and the operation by which the
Class Management Service sends it. A state topic also carries a tombstone message (a null
value). The service serves the document at ``GET /asyncapi.json``; the committed copy is
``docs/asyncapi.json``:

    python -m common_core.events.asyncapi write [PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from common_core.events.envelope import envelope_class
from common_core.events.schemas import render
from common_core.events.topics import TOPICS, TopicSpec

__all__ = ["ASYNCAPI_PATH", "HEADERS", "asyncapi_document"]

ASYNCAPI_PATH = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.json"
"""``docs/asyncapi.json`` of the source tree, the committed document."""

_KAFKA_BINDING_VERSION = "0.5.0"
_SCHEMA_REF = "#/components/schemas/{model}"

HEADERS: dict[str, str] = {
    "event_type": "The envelope's event_type: the topic name.",
    "event_id": "The envelope's event_id (a UUID); consumers deduplicate by it.",
    "correlation_id": "The envelope's correlation_id (a UUID): the request that caused it.",
    "traceparent": (
        "W3C trace context of the request that caused the event (a new trace when it sent"
        " none or a malformed one), also in the envelope's metadata.traceparent; when the"
        " producer exports traces, its publish span (a child of the request's)."
    ),
    "tracestate": "W3C trace state the request sent with its traceparent, when there was one.",
}
"""The Kafka headers of every message (UTF-8 strings), and what each holds."""
_REQUIRED_HEADERS = ("event_type", "event_id", "correlation_id")


def _name(spec: TopicSpec) -> str:
    return spec.event_class.__name__


def _channel_id(spec: TopicSpec) -> str:
    return spec.name.removeprefix("huleedu.").replace(".", "-")


def _message(spec: TopicSpec, payload_ref: str) -> dict[str, Any]:
    key_schema = spec.event_class.model_json_schema()["properties"][spec.key_field]
    return {
        "name": _name(spec),
        "title": _name(spec),
        "summary": (spec.event_class.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
        "payload": {"$ref": payload_ref},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "format": key_schema.get("format", "uuid"),
                    "description": f"The {spec.key_field} of data, as a string.",
                },
                "bindingVersion": _KAFKA_BINDING_VERSION,
            }
        },
    }


def _tombstone(spec: TopicSpec) -> dict[str, Any]:
    return {
        "name": f"{_name(spec)}Tombstone",
        "title": f"{_name(spec)} tombstone",
        "summary": "The aggregate was deleted: a null value under its key.",
        "payload": {"type": "null"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "The deleted id."},
                "bindingVersion": _KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel(spec: TopicSpec) -> dict[str, Any]:
    messages = {_name(spec): {"$ref": f"#/components/messages/{_name(spec)}"}}
    description = f"Envelopes of {_name(spec)}, keyed by {spec.key_field}."
    channel: dict[str, Any] = {"address": spec.name, "description": description}
    if spec.compacted:
        messages[f"{_name(spec)}Tombstone"] = {
            "$ref": f"#/components/messages/{_name(spec)}Tombstone"
        }
        channel["description"] = (
            f"Compacted: per {spec.key_field}, the latest {_name(spec)}; a null value "
            "(tombstone) once the aggregate is deleted. Read from the beginning to bootstrap."
        )
    channel["messages"] = messages
    topic_configuration: dict[str, Any] = {
        "cleanup.policy": [spec.config.get("cleanup.policy", "delete")]
    }
    channel["bindings"] = {
        "kafka": {
            "topic": spec.name,
            "topicConfiguration": topic_configuration,
            "bindingVersion": _KAFKA_BINDING_VERSION,
        }
    }
    return channel


@cache
def _document() -> str:
    refs, definitions = models_json_schema(
        [(envelope_class(spec.event_class), "validation") for spec in TOPICS],
        ref_template=_SCHEMA_REF,
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["KafkaHeaders"] = {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text} for name, text in HEADERS.items()
        },
        "required": list(_REQUIRED_HEADERS),
    }
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPICS:
        payload_ref = refs[(envelope_class(spec.event_class), "validation")]["$ref"]
        messages[_name(spec)] = _message(spec, payload_ref)
        if spec.compacted:
            messages[f"{_name(spec)}Tombstone"] = _tombstone(spec)
        channel_id = _channel_id(spec)
        channel = channels[channel_id] = _channel(spec)
        operations[f"send-{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{message}"}
                for message in channel["messages"]
            ],
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "HuleEdu Class Management Service events",
            "version": "1.0.0",
            "description": (
                "Every topic the Class Management Service publishes. The message key is the "
                "aggregate id; the value is a JSON EventEnvelope (common_core) whose data is "
                "the topic's event. Within v1 events change only additively: readers ignore "
                "fields they do not know."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
    return render(document)


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a fresh copy each call; generated once per process)."""
    document: dict[str, Any] = json.loads(_document())
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common_core.events.asyncapi")
    parser.add_argument("command", choices=("write",))
    parser.add_argument("path", nargs="?", type=Path, default=ASYNCAPI_PATH)
    args = parser.parse_args(argv)
    path: Path = args.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_document(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
