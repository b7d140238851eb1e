"""LocalStack: real processes, clean shutdown, fault control on the same ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huleedu_devstack import Backend, DevstackError
from huleedu_devstack._procs import pid_alive, pids_with_cwd_under, port_accepts, wait_pids_gone
from huleedu_devstack.local import LocalStack, kafka_api_versions_ok, redis_ping_ok

pytestmark = pytest.mark.timeout(120)


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, request_timeout_ms=10_000
    )
    async with asyncio.timeout(30):
        await producer.start()
        try:
            await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()


async def test_local_stack_starts_answers_and_leaves_nothing(probes: Any) -> None:
    stack = LocalStack()
    assert not stack.started
    assert stack.backend is Backend.LOCAL
    with pytest.raises(DevstackError, match="not started"):
        _ = stack.postgres_url
    stack.start()
    try:
        root = stack.root
        assert root.name.startswith("huleedu-devstack-")
        ports = stack.ports
        assert stack.postgres_url == f"postgresql://postgres@127.0.0.1:{ports['postgres']}/postgres"
        assert stack.redis_url == f"redis://127.0.0.1:{ports['redis']}/0"
        assert stack.kafka_bootstrap == f"127.0.0.1:{ports['kafka']}"
        assert len(set(ports.values())) == 3

        assert await probes.postgres(stack.postgres_url) == 1
        assert probes.redis(stack.redis_url)
        await _produce(stack.kafka_bootstrap, "devstack-lifecycle", b"x")
        assert "devstack-lifecycle" in await probes.kafka_topics(stack.kafka_bootstrap)

        for component in ("postgres", "redis", "kafka"):
            assert stack.pids(component), component
        pids = stack.pids()
        watchdog = stack.watchdog_pid
        assert watchdog is not None and pid_alive(watchdog)
        stack.start()  # no-op when started
        assert stack.pids() == pids
    finally:
        stack.stop()

    assert not root.exists()
    assert wait_pids_gone([*pids, watchdog], 10) == []
    assert pids_with_cwd_under(root) == []
    for port in ports.values():
        assert not port_accepts(port)
    assert not stack.started
    stack.stop()  # idempotent


def test_startup_failure_cleans_up_and_shows_the_log() -> None:
    import glob

    from huleedu_devstack.errors import ComponentStartError
    from huleedu_devstack.local import default_base_dir, find_binaries

    pattern = f"{default_base_dir()}/huleedu-devstack-*"
    before = set(glob.glob(pattern))
    real = find_binaries()
    broken = type(real)(
        pg_bindir=real.pg_bindir, redis_server=real.redis_server, tansu="/bin/false"
    )
    stack = LocalStack(binaries=broken, startup_timeout=20)
    with pytest.raises(ComponentStartError, match=r"kafka exited \(code 1\)") as info:
        stack.start()
    assert "--- last lines of" in str(info.value)
    assert not stack.started
    assert set(glob.glob(pattern)) <= before


def test_missing_binaries_say_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    from huleedu_devstack import MissingBinariesError
    from huleedu_devstack.local import find_binaries

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("huleedu_devstack.local._pg_bindir_candidates", lambda environ: [])
    monkeypatch.setattr("os.access", lambda path, mode: False)
    with pytest.raises(MissingBinariesError, match="make setup") as info:
        find_binaries({})
    assert "PostgreSQL" in str(info.value)
    assert "redis-server" in str(info.value)


@pytest.fixture(scope="module")
def own_stack() -> Iterator[LocalStack]:
    """A private stack, so fault injection does not disturb the session's stack."""
    with LocalStack(
        postgres_settings={"work_mem": "7MB", "application_name": "it's mine"}
    ) as stack:
        yield stack


async def test_postgres_settings_reach_postgresql_conf(own_stack: LocalStack) -> None:
    import asyncpg

    conn = await asyncpg.connect(own_stack.postgres_url, timeout=10)
    try:
        assert await conn.fetchval("SHOW work_mem") == "7MB"
        assert await conn.fetchval("SHOW application_name") == "it's mine"
    finally:
        await conn.close()


async def test_stop_and_start_postgres_keeps_port_and_data(
    own_stack: LocalStack, probes: Any
) -> None:
    import asyncpg

    url = own_stack.create_database("faults")
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    finally:
        await conn.close()
    port = own_stack.ports["postgres"]

    own_stack.stop_component("postgres")
    assert not own_stack.component_running("postgres")
    assert own_stack.pids("postgres") == []
    assert not port_accepts(port)
    with pytest.raises((OSError, asyncpg.PostgresError, asyncio.TimeoutError)):
        await probes.postgres(url)
    own_stack.stop_component("postgres")  # already stopped: no-op

    own_stack.start_component("postgres")
    assert own_stack.ports["postgres"] == port
    conn = await asyncpg.connect(url, timeout=10)
    try:
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
    finally:
        await conn.close()
    own_stack.drop_database("faults")


async def test_stop_and_start_redis_on_the_same_port(own_stack: LocalStack, probes: Any) -> None:
    port = own_stack.ports["redis"]
    assert probes.redis(own_stack.redis_url)
    old_pids = own_stack.pids("redis")

    own_stack.stop_component("redis")
    assert own_stack.pids("redis") == []
    assert wait_pids_gone(old_pids, 5) == []
    assert not redis_ping_ok(port)
    with pytest.raises(Exception, match=r"(?i)connect"):
        probes.redis(own_stack.redis_url)

    own_stack.start_component("redis")
    assert own_stack.ports["redis"] == port
    assert probes.redis(own_stack.redis_url)


async def test_stop_and_start_kafka_on_the_same_port_comes_back_empty(
    own_stack: LocalStack, probes: Any
) -> None:
    port = own_stack.ports["kafka"]
    await _produce(own_stack.kafka_bootstrap, "before-restart", b"1")
    assert "before-restart" in await probes.kafka_topics(own_stack.kafka_bootstrap)

    own_stack.stop_component("kafka")
    assert own_stack.pids("kafka") == []
    assert not port_accepts(port)
    assert not kafka_api_versions_ok(port)

    own_stack.start_component("kafka")
    assert own_stack.ports["kafka"] == port
    assert kafka_api_versions_ok(port)
    assert "before-restart" not in await probes.kafka_topics(own_stack.kafka_bootstrap)
    await _produce(own_stack.kafka_bootstrap, "after-restart", b"2")


def _oldest(pids: list[int]) -> int:
    """The pid that started first (a component's main process): by start time in ticks
    since boot, /proc/PID/stat's 22nd field (after the parenthesised command name)."""
    started = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):  # it exited meanwhile
            stat = Path(f"/proc/{pid}/stat").read_text()
            started[pid] = int(stat.rsplit(")", 1)[1].split()[19])
    return min(started, key=started.__getitem__)


@pytest.mark.parametrize("component", ["postgres", "redis", "kafka"])
async def test_restart_component_replaces_the_process(
    own_stack: LocalStack, component: str, probes: Any
) -> None:
    before = own_stack.pids(component)
    own_stack.restart_component(component)
    after = own_stack.pids(component)
    assert after and not set(before) & set(after)
    assert own_stack.component_running(component)
    own_stack.start_component(component)  # running: no-op, the same main process
    # (PostgreSQL's backends and autovacuum workers come and go on their own.)
    assert _oldest(own_stack.pids(component)) == _oldest(after)
    assert await probes.postgres(own_stack.postgres_url) == 1
    assert probes.redis(own_stack.redis_url)
    assert isinstance(await probes.kafka_topics(own_stack.kafka_bootstrap), set)


def test_unknown_component_is_rejected(own_stack: LocalStack) -> None:
    for action in (own_stack.stop_component, own_stack.start_component):
        with pytest.raises(ValueError, match="unknown component 'zookeeper'"):
            action("zookeeper")
