"""choose_backend() decision table, docker detection and create_stack() wiring."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from types import MappingProxyType

import pytest
from huleedu_devstack import (
    BACKEND_ENV,
    KAFKA_BOOTSTRAP_ENV,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    Backend,
    DevstackConfigError,
    DevstackError,
    FaultControlUnsupported,
    choose_backend,
    create_stack,
    docker_engine_available,
)
from huleedu_devstack.backend import docker_probe_needed

PG = {POSTGRES_URL_ENV: "postgresql://postgres@db:5432/postgres"}
REDIS = {REDIS_URL_ENV: "redis://cache:6379/0"}
KAFKA = {KAFKA_BOOTSTRAP_ENV: "broker:9092"}
ALL = {**PG, **REDIS, **KAFKA}

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("environ", "docker_available", "expected"),
    [
        pytest.param({}, False, Backend.LOCAL, id="nothing-no-docker"),
        pytest.param({}, True, Backend.DOCKER, id="nothing-docker"),
        pytest.param(ALL, False, Backend.EXTERNAL, id="all-urls"),
        pytest.param(ALL, True, Backend.EXTERNAL, id="all-urls-beat-docker"),
        pytest.param({**ALL, BACKEND_ENV: "local"}, True, Backend.EXTERNAL, id="urls-beat-forced"),
        pytest.param({**ALL, BACKEND_ENV: "external"}, False, Backend.EXTERNAL, id="forced-ext"),
        pytest.param({BACKEND_ENV: "local"}, True, Backend.LOCAL, id="forced-local"),
        pytest.param({BACKEND_ENV: "local"}, False, Backend.LOCAL, id="forced-local-no-docker"),
        pytest.param({BACKEND_ENV: "docker"}, False, Backend.DOCKER, id="forced-docker"),
        pytest.param({BACKEND_ENV: "docker"}, True, Backend.DOCKER, id="forced-docker-docker"),
        pytest.param({BACKEND_ENV: " Docker "}, False, Backend.DOCKER, id="forced-case-space"),
        pytest.param({BACKEND_ENV: "LOCAL"}, True, Backend.LOCAL, id="forced-upper"),
        pytest.param({BACKEND_ENV: ""}, True, Backend.DOCKER, id="empty-forced-is-unset"),
        pytest.param({BACKEND_ENV: "  "}, False, Backend.LOCAL, id="blank-forced-is-unset"),
        pytest.param(
            {POSTGRES_URL_ENV: "", REDIS_URL_ENV: "", KAFKA_BOOTSTRAP_ENV: ""},
            False,
            Backend.LOCAL,
            id="empty-urls-are-unset",
        ),
        pytest.param({**PG, REDIS_URL_ENV: " ", KAFKA_BOOTSTRAP_ENV: ""}, True, None, id="blanks"),
        pytest.param({"PATH": "/bin", "HULEEDU_OTHER": "x"}, False, Backend.LOCAL, id="unrelated"),
    ],
)
def test_choose_backend(
    environ: dict[str, str], docker_available: bool, expected: Backend | None
) -> None:
    if expected is None:
        with pytest.raises(DevstackConfigError):
            choose_backend(environ, docker_available)
        return
    frozen = MappingProxyType(dict(environ))
    result = choose_backend(frozen, docker_available)
    assert result is expected
    assert dict(frozen) == environ


@pytest.mark.parametrize(
    ("environ", "missing", "present"),
    [
        pytest.param(PG, [REDIS_URL_ENV, KAFKA_BOOTSTRAP_ENV], [POSTGRES_URL_ENV], id="pg-only"),
        pytest.param(REDIS, [POSTGRES_URL_ENV, KAFKA_BOOTSTRAP_ENV], [REDIS_URL_ENV], id="redis"),
        pytest.param(KAFKA, [POSTGRES_URL_ENV, REDIS_URL_ENV], [KAFKA_BOOTSTRAP_ENV], id="kafka"),
        pytest.param({**PG, **REDIS}, [KAFKA_BOOTSTRAP_ENV], [], id="no-kafka"),
        pytest.param({**PG, **KAFKA}, [REDIS_URL_ENV], [], id="no-redis"),
        pytest.param({**REDIS, **KAFKA}, [POSTGRES_URL_ENV], [], id="no-pg"),
        pytest.param(
            {**PG, BACKEND_ENV: "local"},
            [REDIS_URL_ENV, KAFKA_BOOTSTRAP_ENV],
            [POSTGRES_URL_ENV],
            id="partial-and-forced",
        ),
    ],
)
@pytest.mark.parametrize("docker_available", [False, True])
def test_partial_external_config_names_the_missing_variables(
    environ: dict[str, str], missing: list[str], present: list[str], docker_available: bool
) -> None:
    with pytest.raises(DevstackConfigError) as info:
        choose_backend(environ, docker_available)
    message = str(info.value)
    named_missing = message.partition(" but ")[2].split(" missing")[0]
    for name in missing:
        assert name in named_missing
    for name in present:
        assert name not in named_missing
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", ["podman", "loca", "1", "docker-compose"])
def test_unknown_forced_backend_is_rejected(value: str) -> None:
    with pytest.raises(
        DevstackConfigError, match=f"{BACKEND_ENV}=.*{value}.*external|docker|local"
    ):
        choose_backend({BACKEND_ENV: value}, True)


def test_forced_external_without_urls_is_rejected() -> None:
    with pytest.raises(DevstackConfigError, match=POSTGRES_URL_ENV):
        choose_backend({BACKEND_ENV: "external"}, True)


def test_backend_values() -> None:
    assert [b.value for b in Backend] == ["external", "docker", "local"]
    assert Backend("local") is Backend.LOCAL
    assert f"{Backend.DOCKER}" == "docker"


@pytest.mark.parametrize(
    ("environ", "needed"),
    [({}, True), (PG, False), ({BACKEND_ENV: "local"}, False), ({BACKEND_ENV: ""}, True)],
)
def test_docker_probe_needed(environ: dict[str, str], needed: bool) -> None:
    assert docker_probe_needed(environ) is needed


def _fake_docker(directory: Path, body: str) -> None:
    script = directory / "docker"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_docker_engine_available_without_docker_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert docker_engine_available() is False


@pytest.mark.parametrize(("body", "expected"), [("exit 0", True), ("exit 1", False)])
def test_docker_engine_available_uses_docker_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: bool
) -> None:
    _fake_docker(tmp_path, f'[ "$1" = info ] || exit 3\n{body}')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert docker_engine_available() is expected


def test_docker_engine_available_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker(tmp_path, "exec sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    started = time.monotonic()
    assert docker_engine_available(timeout=0.5) is False
    assert time.monotonic() - started < 5


def test_create_stack_external_wraps_the_urls() -> None:
    stack = create_stack(ALL)
    assert stack.backend is Backend.EXTERNAL
    assert stack.postgres_url == PG[POSTGRES_URL_ENV]
    assert stack.redis_url == REDIS[REDIS_URL_ENV]
    assert stack.kafka_bootstrap == KAFKA[KAFKA_BOOTSTRAP_ENV]
    with stack:  # start/stop are no-ops: the services are not ours
        pass
    for action in (stack.stop_component, stack.start_component, stack.restart_component):
        with pytest.raises(FaultControlUnsupported, match="external"):
            action("kafka")
    with pytest.raises(ValueError, match="unknown component"):
        stack.stop_component("mysql")


def test_create_stack_local_and_docker_are_not_started() -> None:
    local = create_stack({BACKEND_ENV: "local"})
    assert local.backend is Backend.LOCAL
    docker = create_stack({}, docker_available=True)
    assert docker.backend is Backend.DOCKER
    for stack in (local, docker):
        with pytest.raises(DevstackError, match="not started"):
            _ = stack.postgres_url
        stack.stop()  # stopping a never-started stack is fine
    with pytest.raises(DevstackError, match="not started"):
        docker.stop_component("redis")
