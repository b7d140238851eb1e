"""CPU cost of trace propagation and of OpenTelemetry per POST /v1/classes, in one process.

    uv run python scripts/bench/trace_overhead.py [--count 2000] [--rounds 5]

Three builds of the app (as ``serve`` builds it, relay off) take turns, round by round, on
the same LocalStack database, each request sending a ``traceparent``:

- ``bare``: no trace middleware at all (the events still get a new trace id each);
- ``off``: what runs when OTEL_EXPORTER_OTLP_ENDPOINT is unset: ``PropagateTraceContext``;
- ``sdk``: the OpenTelemetry SDK, ASGI middleware and asyncpg instrumentation, every span
  made, ended and handed to an exporter that drops it (the cost of always-on
  instrumentation before any export; the asyncpg instrumentation is installed only during
  this build's rounds, as it patches asyncpg process-wide).

Prints the median process CPU µs per request of each, and the change against ``bare``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_per_request import Call, asgi_call, log_to_devnull, new_class_body
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from services.class_management_service import tracing
from services.class_management_service.config import AuthMode, Settings
from services.class_management_service.migrations import upgrade_to_head
from services.class_management_service.server import build_app

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class DroppingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def traced_call(app: Any, call: Call, number: int) -> None:
    """``asgi_call`` with a traceparent header added to the scope."""

    async def with_trace(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["headers"] = [*scope["headers"], (b"traceparent", TRACEPARENT)]
        await app(scope, receive, send)

    status, body = await asgi_call(with_trace, call, number)
    if status != call.expected:
        raise SystemExit(f"{call.method} {call.path}: {status} {body[:300]!r}")


async def cpu_round(app: Any, call: Call, count: int, start: int) -> float:
    began = time.process_time()
    for number in range(count):
        await traced_call(app, call, start + number)
    return (time.process_time() - began) / count * 1e6


async def run(args: argparse.Namespace, database_url: str, redis_url: str, kafka: str) -> None:
    settings = Settings(
        AUTH_MODE=AuthMode.TRUSTED_HEADER,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        KAFKA_ENABLE_IDEMPOTENCE=False,
        RELAY_ENABLED=False,
    )
    off = build_app(settings)
    bare = build_app(settings)
    bare.asgi_app = bare.asgi_app._app  # type: ignore[attr-defined]  # unwrap the propagation
    tracing.start_tracing(DroppingExporter())
    sdk = build_app(settings)
    AsyncPGInstrumentor().uninstrument()  # installed again around each of sdk's rounds
    builds = {"bare": bare, "off": off, "sdk": sdk}
    call = Call("POST", "/v1/classes", "trace-bench", new_class_body, expected=201)
    figures: dict[str, list[float]] = {name: [] for name in builds}
    async with contextlib.AsyncExitStack() as stack:
        for app in builds.values():
            await stack.enter_async_context(app.test_app())
        for name, app in builds.items():  # warm-up: caches, prepared statements
            with instrumented(name == "sdk"):
                await cpu_round(app, call, 100, 0)
        for round_number in range(args.rounds):
            for index, (name, app) in enumerate(builds.items()):
                start = 10_000_000 + (round_number * len(builds) + index) * args.count
                with instrumented(name == "sdk"):
                    figures[name].append(await cpu_round(app, call, args.count, start))
    base = statistics.median(figures["bare"])
    title = f"CPU µs per POST /v1/classes (median of {args.rounds} x {args.count})"
    print(f"| build | {title} | vs bare | each round |")
    print("|---|--:|--:|---|")
    for name, values in figures.items():
        cost = statistics.median(values)
        rounds = ", ".join(f"{value:,.0f}" for value in values)
        print(f"| {name} | {cost:,.0f} | {cost / base - 1:+.1%} | {rounds} |")


@contextlib.contextmanager
def instrumented(on: bool) -> Any:
    if not on:
        yield
        return
    AsyncPGInstrumentor().instrument(tracer_provider=tracing._active.provider)
    try:
        yield
    finally:
        AsyncPGInstrumentor().uninstrument()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="requests per round (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per build (5)")
    args = parser.parse_args()
    from huleedu_devstack.local import LocalStack

    log_to_devnull()
    with LocalStack() as stack:
        database_url = stack.create_database("cms_trace")
        upgrade_to_head(database_url)
        import uvloop

        uvloop.run(run(args, database_url, stack.redis_url, stack.kafka_bootstrap))


if __name__ == "__main__":
    main()
