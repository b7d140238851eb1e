"""CPU time per request of each route, measured in one process: no server, no wrk.

    uv run python scripts/bench/cpu_per_request.py               # table of µs per request
    uv run python scripts/bench/cpu_per_request.py --profile put_class --top 40
    uv run python scripts/bench/cpu_per_request.py --ab SOME_SWITCH=1 --rounds 9  # A/B

The app is built by ``server.build_app`` (as ``serve`` builds it) against a LocalStack,
and each request is one call of the ASGI app with a prepared scope, one at a time, so the
figures are the app's own CPU cost (framework, validation, DI, repository, encoding, one
access-log line formatted and written to /dev/null) without uvicorn's parsing or the load generator.
The relay is off: it is measured by run_bench.py's event probe. This is the steady figure
to compare changes with; run_bench.py gives the end-to-end latency under load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from import_bench import csv_file

from services.class_management_service.config import AuthMode, Settings
from services.class_management_service.logging_setup import configure_logging
from services.class_management_service.migrations import upgrade_to_head
from services.class_management_service.server import build_app

READER = "cpu-reader"
WRITER = "cpu-writer"


@dataclass
class Call:
    method: str
    path: str
    user: str
    body: Callable[[int], bytes] | None = None
    query: str = ""
    expected: int = 200
    content_type: bytes = b"application/json"


async def asgi_call(app: Any, call: Call, number: int) -> tuple[int, bytes]:
    body = call.body(number) if call.body else b""
    headers = [(b"host", b"bench"), (b"x-user-id", call.user.encode())]
    if body:
        headers += [(b"content-type", call.content_type), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": call.method,
        "scheme": "http",
        "path": call.path,
        "raw_path": call.path.encode(),
        "query_string": call.query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5002),
        "extensions": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def request_json(app: Any, call: Call, number: int = 0) -> Any:
    status, body = await asgi_call(app, call, number)
    if status != call.expected:
        raise SystemExit(f"{call.method} {call.path}: {status} {body[:300]!r}")
    return json.loads(body) if body else None


def new_class_body(number: int) -> bytes:
    return json.dumps({"name": f"CPU class {number}", "course_codes": ["ENG5"]}).encode()


async def seed(app: Any) -> dict[str, Call]:
    create = Call("POST", "/v1/classes", READER, new_class_body, expected=201)
    class_ids = [(await request_json(app, create, n))["id"] for n in range(60)]
    roster_id = class_ids[0]
    for number in range(30):
        student = {
            "person_name": {"first_name": f"Student{number}", "last_name": "Roster"},
            "email": f"roster{number}@cpu.example.com",
            "class_ids": [roster_id],
        }
        await request_json(
            app,
            Call(
                "POST",
                "/v1/classes/students",
                READER,
                lambda _, student=student: json.dumps(student).encode(),
                expected=201,
            ),
        )
    writer_ids = [
        (
            await request_json(
                app, Call("POST", "/v1/classes", WRITER, new_class_body, expected=201), n
            )
        )["id"]
        for n in range(2)
    ]
    run = uuid.uuid4().hex[:8]

    def student_body(number: int) -> bytes:
        return json.dumps(
            {
                "person_name": {"first_name": f"Ada{number}", "last_name": "Bench"},
                "email": f"s-{run}-{number}@cpu.example.com",
                "class_ids": writer_ids,
            }
        ).encode()

    importing = (
        await request_json(
            app, Call("POST", "/v1/classes", WRITER, new_class_body, expected=201), 99
        )
    )["id"]

    def rename(number: int) -> bytes:
        return json.dumps({"name": f"Renamed {run} {number}"}).encode()

    return {
        "live": Call("GET", "/healthz/live", READER),
        "healthz": Call("GET", "/healthz", READER),
        "get_class": Call("GET", f"/v1/classes/{class_ids[1]}", READER),
        "list_classes": Call("GET", "/v1/classes", READER, query="limit=20"),
        "roster": Call("GET", f"/v1/classes/{roster_id}/roster", READER, query="limit=50"),
        "post_class": Call("POST", "/v1/classes", WRITER, new_class_body, expected=201),
        "put_class": Call("PUT", f"/v1/classes/{writer_ids[0]}", WRITER, rename),
        "post_student": Call("POST", "/v1/classes/students", WRITER, student_body, expected=201),
        **{
            f"import_{rows}": Call(
                "POST",
                f"/v1/classes/{importing}/students/import",
                WRITER,
                lambda number, rows=rows: csv_file(rows, f"{run}-{rows}-{number}"),
                content_type=b"text/csv",
            )
            for rows in (30, 1000)
        },
    }


async def cpu_round(app: Any, call: Call, count: int, start: int) -> float:
    """Process CPU µs per request over ``count`` requests."""
    began = time.process_time()
    for number in range(count):
        status, body = await asgi_call(app, call, start + number)
        if status != call.expected:
            raise SystemExit(f"{call.method} {call.path}: {status} {body[:300]!r}")
    return (time.process_time() - began) / count * 1e6


async def measure(apps: list[Any], call: Call, count: int, start: int, rounds: int) -> list[float]:
    """Median over ``rounds`` rounds of the process CPU µs per request, for each app.

    The apps take turns round by round, so that a drift in the machine's speed (other
    processes on the same cores) affects them alike: compare them, not runs of the script.
    """
    figures: list[list[float]] = [[] for _ in apps]
    for round_number in range(rounds):
        for index, app in enumerate(apps):
            offset = start + (round_number * len(apps) + index) * count
            figures[index].append(await cpu_round(app, call, count, offset))
    return [statistics.median(values) for values in figures]


def _build(settings: Settings, env: dict[str, str]) -> Any:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return build_app(settings)
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


async def run(args: argparse.Namespace, database_url: str, redis_url: str, kafka: str) -> None:
    settings = Settings(
        AUTH_MODE=AuthMode.TRUSTED_HEADER,  # requests carry X-User-ID
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        KAFKA_ENABLE_IDEMPOTENCE=False,
        RELAY_ENABLED=False,
    )
    apps = [_build(settings, {})]
    if args.ab:
        name, _, value = args.ab.partition("=")
        apps.append(_build(settings, {name: value}))
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.test_app())
        calls = await seed(apps[0])
        keys = args.only.split(",") if args.only else list(calls)
        for key in keys:
            await measure(apps, calls[key], 50, 0, 1)  # warm-up: caches, prepared statements
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await measure(apps[:1], calls[args.profile], args.count, 10_000, args.rounds)
            profiler.disable()
            if args.dump:
                profiler.dump_stats(args.dump)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
            return
        title = f"CPU µs per request (median of {args.rounds} x {args.count})"
        if args.ab:
            print(f"| route | {title} | with {args.ab} | change |\n|---|--:|--:|--:|")
        else:
            print(f"| route | {title} |\n|---|--:|")
        for key in keys:
            costs = await measure(apps, calls[key], args.count, 1000, args.rounds)
            if args.ab:
                base, other = costs
                print(f"| {key} | {base:,.0f} | {other:,.0f} | {other / base - 1:+.1%} |")
            else:
                print(f"| {key} | {costs[0]:,.0f} |")


def log_to_devnull() -> None:
    """One access-log line per request is part of the cost: format it as production does
    (LOG_FORMAT and LOG_LEVEL from the environment), then write it to /dev/null."""
    configure_logging(Settings())
    devnull = open(os.devnull, "w")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="requests per round (300)")
    parser.add_argument("--only", default="", help="comma-separated routes")
    parser.add_argument("--profile", default="", help="cProfile this route instead")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (cumulative)")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--dump", default="", help="also write the profile to this file")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per route (3)")
    parser.add_argument(
        "--ab",
        default="",
        metavar="NAME=VALUE",
        help="also build the app with this environment variable set; measure both in turns",
    )
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (uvloop)"
    )
    args = parser.parse_args()
    from huleedu_devstack.local import LocalStack

    log_to_devnull()
    with LocalStack() as stack:
        database_url = stack.create_database("cms_cpu")
        upgrade_to_head(database_url)
        main_coroutine = run(args, database_url, stack.redis_url, stack.kafka_bootstrap)
        if args.loop == "uvloop":
            import uvloop  # production serves on uvloop (server.py)

            uvloop.run(main_coroutine)
        else:
            asyncio.run(main_coroutine)


if __name__ == "__main__":
    main()
