"""Opt-in: the compose stack on a real Docker engine (``pytest -m docker``).

Deselected by default (the root pytest options carry ``-m "not docker"``); asking for it
with ``-m docker`` on a machine without a reachable engine fails, it never passes.
It validates the merged compose files with ``docker compose config``, then (when
the images can be pulled and built) brings the whole stack up under a separate project
name, polls http://127.0.0.1:5002/healthz until it answers 200, waits for the relay
container to be healthy, and always tears the stack down again with ``down -v``.

It publishes the same host ports and container names as the development stack, so stop
that first (``docker compose -f ... -f ... down``).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from huleedu_devstack.backend import docker_engine_available

REPO_ROOT = Path(__file__).resolve().parents[4]
COMPOSE_FILES = ("docker-compose.infrastructure.yml", "docker-compose.services.yml")
HEALTHZ = "http://127.0.0.1:5002/healthz"
UP_TIMEOUT_SECONDS = 900
HEALTHY_TIMEOUT_SECONDS = 300


def _compose(project: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = ["docker", "compose", "--project-name", project]
    for name in COMPOSE_FILES:
        command += ["-f", str(REPO_ROOT / name)]
    return subprocess.run(
        [*command, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _healthz() -> tuple[int, str]:
    try:
        with urllib.request.urlopen(HEALTHZ, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


@pytest.mark.docker
@pytest.mark.timeout(UP_TIMEOUT_SECONDS + HEALTHY_TIMEOUT_SECONDS + 300)
def test_compose_stack_comes_up_healthy() -> None:
    assert docker_engine_available(), "-m docker needs a reachable Docker engine (docker info)"
    project = f"huleedu-compose-test-{uuid.uuid4().hex[:8]}"

    config = _compose(project, "config", "--quiet")
    assert config.returncode == 0, f"docker compose config failed:\n{config.stderr}"

    pull = _compose(project, "pull", "--ignore-buildable", timeout=UP_TIMEOUT_SECONDS)
    assert pull.returncode == 0, f"the images could not be pulled:\n{pull.stderr}"

    try:
        _bring_up_and_check(project)
    finally:
        down = _compose(project, "down", "-v", "--remove-orphans", timeout=300)
    assert down.returncode == 0, f"docker compose down -v failed:\n{down.stderr}"


def _bring_up_and_check(project: str) -> None:
    up = _compose(project, "up", "--build", "--detach", timeout=UP_TIMEOUT_SECONDS)
    assert up.returncode == 0, f"docker compose up failed:\n{up.stdout}\n{up.stderr}"

    deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
    status, body = _healthz()
    while status != 200 and time.monotonic() < deadline:
        time.sleep(3)
        status, body = _healthz()

    if status != 200:
        logs = _compose(project, "logs", "--no-color", "--tail", "200")
        pytest.fail(
            f"{HEALTHZ} answered {status} {body!r} after {HEALTHY_TIMEOUT_SECONDS}s\n"
            f"{logs.stdout}\n{logs.stderr}"
        )
    assert json.loads(body)["status"] == "ok"

    # Both one-shot jobs ran to completion with exit code 0.
    states = _states(project)
    for job in ("kafka_topic_setup", "class_management_migrate"):
        (entry,) = [state for state in states if state.get("Service") == job]
        assert entry.get("ExitCode") == 0, entry

    # The relay container (no published port) passes its own /healthz healthcheck.
    relay = _relay_state(project)
    while relay.get("Health") != "healthy" and time.monotonic() < deadline:
        time.sleep(3)
        relay = _relay_state(project)
    assert relay.get("State") == "running" and relay.get("Health") == "healthy", relay


def _states(project: str) -> list[dict[str, object]]:
    """``docker compose ps --all``: one entry per container."""
    ps = _compose(project, "ps", "--all", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    text = ps.stdout.strip()
    if text.startswith("["):  # older Compose: one JSON array
        states: list[dict[str, object]] = json.loads(text)
        return states
    # Compose >= 2.21: one JSON object per line
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _relay_state(project: str) -> dict[str, object]:
    (entry,) = [s for s in _states(project) if s.get("Service") == "class_management_relay"]
    return entry
