"""python -m huleedu_devstack up|run, and cleanup when the owning process dies."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huleedu_devstack import BACKEND_ENV, KAFKA_BOOTSTRAP_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV
from huleedu_devstack._procs import pids_with_cwd_under, port_accepts

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "huleedu_devstack"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HULEEDU_DEVSTACK_")}
    env[BACKEND_ENV] = "local"
    return env


def _read_until(proc: subprocess.Popen[bytes], marker: str, timeout: float = 60) -> str:
    """Read the child's stdout until ``marker`` shows up (or fail at the deadline)."""
    assert proc.stdout is not None
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while marker.encode() not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {marker!r} within {timeout}s; got {data!r}")
            if selector.select(remaining):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    pytest.fail(f"EOF before {marker!r}; got {data!r}")
                data += chunk
    return data.decode()


def _ports(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)]


def _assert_closed(ports: list[int]) -> None:
    assert ports
    for port in ports:
        assert not port_accepts(port), port


def test_run_gives_the_command_the_urls_and_returns_its_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    child = (
        "import json, os, socket, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('HULEEDU_DEVSTACK_')}\n"
        "ports = [int(v.rsplit(':', 1)[1].split('/')[0])\n"
        "         for v in env.values() if '127.0.0.1' in v]\n"
        "for p in ports: socket.create_connection(('127.0.0.1', p), timeout=5).close()\n"
        "json.dump(env, open(sys.argv[1], 'w'))\n"
        "sys.exit(7)\n"
    )
    result = subprocess.run(
        [*CLI, "run", "--", sys.executable, "-c", child, str(out)],
        env=_env(),
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 7, result.stderr.decode()
    seen = json.loads(out.read_text())
    assert seen[POSTGRES_URL_ENV].startswith("postgresql://postgres@127.0.0.1:")
    assert seen[REDIS_URL_ENV].startswith("redis://127.0.0.1:")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", seen[KAFKA_BOOTSTRAP_ENV])
    assert f"export {KAFKA_BOOTSTRAP_ENV}=" in result.stderr.decode()
    _assert_closed(_ports(" ".join(seen.values())))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 42), (signal.SIGINT, 43)])
def test_run_forwards_signals_to_the_command(sig: signal.Signals, code: int) -> None:
    child = (
        "import signal, sys, time\n"
        f"signal.signal({int(sig)}, lambda *a: sys.exit({code}))\n"
        "print('child ready', flush=True)\n"
        "time.sleep(60)\n"
        "sys.exit(1)\n"
    )
    proc = subprocess.Popen(
        [*CLI, "run", "--", sys.executable, "-c", child],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        _read_until(proc, "child ready")
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr.decode()
    _assert_closed(_ports(stderr.decode()))


def test_run_without_a_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [*CLI, "run", "--"], env=_env(), capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert b"missing CMD" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_prints_urls_and_stops_cleanly_on_signal(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [*CLI, "up"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    try:
        text = _read_until(proc, "Press Ctrl-C")
        for name in (POSTGRES_URL_ENV, REDIS_URL_ENV, KAFKA_BOOTSTRAP_ENV):
            assert f"export {name}=" in text
        ports = sorted(set(_ports(text)))
        assert len(ports) == 3
        assert all(port_accepts(port) for port in ports)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert b"devstack stopped." in stdout
    _assert_closed(ports)


_OWNER = """
import os, signal, sys
from huleedu_devstack.local import LocalStack
stack = LocalStack()
stack.start()
print(stack.root, *stack.ports.values(), flush=True)
how = sys.argv[1]
if how == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
elif how == "os_exit":
    os._exit(3)
# "exit": a plain interpreter exit without stop(): atexit cleans up
"""


@pytest.mark.parametrize("how", ["exit", "os_exit", "sigkill"])
def test_nothing_remains_when_the_owner_dies_without_stop(how: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _OWNER, how],
        env=_env(),
        capture_output=True,
        timeout=90,
        check=False,
    )
    fields = result.stdout.decode().split()
    assert len(fields) == 4, result.stderr.decode()
    root, ports = Path(fields[0]), [int(p) for p in fields[1:]]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not root.exists() and not pids_with_cwd_under(root):
            break
        time.sleep(0.1)
    assert not root.exists()
    assert pids_with_cwd_under(root) == []
    _assert_closed(ports)
