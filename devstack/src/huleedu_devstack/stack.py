"""The Stack protocol and open_stack(), which picks a backend and starts it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

from huleedu_devstack.backend import (
    Backend,
    choose_backend,
    docker_engine_available,
    docker_probe_needed,
)


class Stack(Protocol):
    """PostgreSQL + Redis + a Kafka-protocol broker, however they are provided."""

    @property
    def backend(self) -> Backend: ...

    @property
    def postgres_url(self) -> str:
        """``postgresql://user@host:port/postgres``: an admin URL (may create databases)."""
        ...

    @property
    def redis_url(self) -> str:
        """``redis://host:port/0``."""
        ...

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port``."""
        ...

    def start(self) -> None:
        """Start the services and wait until they answer; no-op when already started."""

    def stop(self) -> None:
        """Stop the services and remove what was created; idempotent."""

    def __enter__(self) -> Stack: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def stop_component(self, name: str) -> None:
        """Stop "postgres" | "redis" | "kafka" (fault injection)."""

    def start_component(self, name: str) -> None:
        """Bring a stopped component back on the same port."""

    def restart_component(self, name: str) -> None: ...

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE (optionally from a template); returns its URL."""
        ...

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ... WITH (FORCE)."""


def create_stack(
    environ: Mapping[str, str] = os.environ, *, docker_available: bool | None = None
) -> Stack:
    """The stack choose_backend() picks for ``environ``, not started yet.

    ``docker available`` is probed with ``docker info`` only when it matters.
    """
    if docker_available is None:
        docker_available = docker_probe_needed(environ) and docker_engine_available()
    backend = choose_backend(environ, docker_available)
    if backend is Backend.EXTERNAL:
        from huleedu_devstack.external import ExternalStack

        return ExternalStack.from_environ(environ)
    if backend is Backend.DOCKER:
        from huleedu_devstack.docker import DockerStack

        return DockerStack()
    from huleedu_devstack.local import LocalStack

    return LocalStack()


def open_stack(
    environ: Mapping[str, str] = os.environ, *, docker_available: bool | None = None
) -> Stack:
    """Create the chosen stack and start it. Stop it with ``stop()`` or use ``with``."""
    stack = create_stack(environ, docker_available=docker_available)
    stack.start()
    return stack
