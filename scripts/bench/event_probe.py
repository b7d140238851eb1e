"""Event delivery probe: time from a POST /v1/classes 201 to its event leaving the broker.

Run by run_bench.py as its own process while wrk loads the service. It

1. assigns itself every partition of the class-created topic by hand (no consumer group,
   so no join delay) and seeks to the end;
2. prints ``PROBE_READY`` and waits ``--start-delay`` seconds;
3. POSTs a class with its own X-Correlation-ID at ``--rate`` per second (open loop: a slow
   answer does not delay the next request) for ``--duration`` seconds;
4. keeps consuming until every event arrived or ``--drain`` seconds passed;
5. prints one ``PROBE_RESULT {json}`` line.

Both instants come from this process's monotonic clock. The latency is
``consumed_at - response_at``; an event consumed before the client had read the 201 (the
relay is woken before the response is written) counts as 0 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from common_core.events.topics import CLASS_CREATED_TOPIC


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (the value below which ``fraction`` of the samples lie)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


async def consume(
    consumer: AIOKafkaConsumer,
    arrivals: dict[str, float],
    expected: dict[str, float],
    sending_done: asyncio.Event,
    all_arrived: asyncio.Event,
) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.monotonic()
        for records in batches.values():
            for record in records:
                headers = dict(record.headers or ())
                correlation_id = headers.get("correlation_id", b"").decode()
                arrivals.setdefault(correlation_id, now)
        if sending_done.is_set() and expected.keys() <= arrivals.keys():
            all_arrived.set()


async def post_class(
    client: httpx.AsyncClient,
    user_id: str,
    index: int,
    responses: dict[str, float],
    statuses: list[int],
    http_latencies: list[float],
) -> None:
    correlation_id = str(uuid.uuid4())
    started = time.monotonic()
    try:
        response = await client.post(
            "/v1/classes",
            json={"name": f"Probe {index}", "course_codes": ["ENG5"]},
            headers={"X-User-ID": user_id, "X-Correlation-ID": correlation_id},
        )
    except httpx.HTTPError:
        statuses.append(0)
        return
    finished = time.monotonic()
    statuses.append(response.status_code)
    if response.status_code == 201:
        responses[correlation_id] = finished
        http_latencies.append(finished - started)


async def run(args: argparse.Namespace) -> dict[str, object]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=args.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        await consumer.topics()  # fetches metadata, so the topic's partitions are known
        partitions = sorted(consumer.partitions_for_topic(CLASS_CREATED_TOPIC) or ())
        if not partitions:
            raise SystemExit(f"topic {CLASS_CREATED_TOPIC} has no partitions")
        assigned = [TopicPartition(CLASS_CREATED_TOPIC, number) for number in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for partition in assigned:
            await consumer.position(partition)

        arrivals: dict[str, float] = {}
        responses: dict[str, float] = {}
        statuses: list[int] = []
        http_latencies: list[float] = []
        sending_done, all_arrived = asyncio.Event(), asyncio.Event()
        consumer_task = asyncio.create_task(
            consume(consumer, arrivals, responses, sending_done, all_arrived)
        )
        print("PROBE_READY", flush=True)
        await asyncio.sleep(args.start_delay)

        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=args.base_url, limits=limits, timeout=10) as client:
            total = int(args.rate * args.duration)
            started = time.monotonic()
            posts: list[asyncio.Task[None]] = []
            for index in range(total):
                delay = started + index / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(
                    asyncio.create_task(
                        post_class(client, args.user, index, responses, statuses, http_latencies)
                    )
                )
            await asyncio.gather(*posts)

        sending_done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_arrived.wait(), args.drain)
        consumer_task.cancel()
        try:
            await consumer_task
        except asyncio.CancelledError:
            pass
    finally:
        await consumer.stop()

    delivered = [
        max(arrivals[key] - answered, 0.0) for key, answered in responses.items() if key in arrivals
    ]
    early = sum(1 for key, answered in responses.items() if arrivals.get(key, 1e18) < answered)
    return {
        "sent": len(statuses),
        "created": len(responses),
        "http_errors": sum(1 for status in statuses if status != 201),
        "delivered": len(delivered),
        "missing": len(responses) - len(delivered),
        "before_response": early,
        "p50_ms": percentile(delivered, 0.50) * 1000,
        "p99_ms": percentile(delivered, 0.99) * 1000,
        "max_ms": max(delivered, default=float("nan")) * 1000,
        "http_p50_ms": percentile(http_latencies, 0.50) * 1000,
        "http_p99_ms": percentile(http_latencies, 0.99) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--user", default="bench-probe")
    parser.add_argument("--rate", type=float, default=20.0, help="POSTs per second")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of POSTing")
    parser.add_argument("--start-delay", type=float, default=1.0)
    parser.add_argument("--drain", type=float, default=10.0)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=20)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print("PROBE_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
