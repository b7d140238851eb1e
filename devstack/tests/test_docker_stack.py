"""DockerStack wiring against fake testcontainers classes (no Docker engine needed)."""

from __future__ import annotations

from typing import Any

import pytest
from huleedu_devstack import Backend, ComponentStartError
from huleedu_devstack.docker import KAFKA_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, DockerStack

pytestmark = pytest.mark.timeout(30)


class FakeDockerContainer:
    def __init__(self) -> None:
        self.status = "running"

    def reload(self) -> None:
        pass

    def pause(self) -> None:
        assert self.status == "running"
        self.status = "paused"

    def unpause(self) -> None:
        assert self.status == "paused"
        self.status = "running"


class FakeContainer:
    created: list[FakeContainer] = []
    fail_on_start: set[str] = set()

    def __init__(self, image: str, **kwargs: Any) -> None:
        self.image = image
        self.kwargs = kwargs
        self.port = 5555
        self.command: str | None = None
        self.kraft = False
        self.state = "created"
        self.docker = FakeDockerContainer()
        FakeContainer.created.append(self)

    def with_command(self, command: str) -> FakeContainer:
        self.command = command
        return self

    def with_kraft(self) -> FakeContainer:
        self.kraft = True
        return self

    def start(self) -> FakeContainer:
        if self.image in FakeContainer.fail_on_start:
            raise RuntimeError(f"cannot pull {self.image}")
        self.state = "started"
        return self

    def stop(self) -> None:
        self.state = "removed"

    def get_wrapped_container(self) -> FakeDockerContainer:
        return self.docker

    def get_container_host_ip(self) -> str:
        return "localhost"

    def get_exposed_port(self, port: int) -> int:
        return 40000 + len(FakeContainer.created)

    def get_connection_url(self, driver: Any = None) -> str:
        assert driver is None
        return f"postgresql://{self.kwargs['username']}:pw@localhost:40001/{self.kwargs['dbname']}"

    def get_bootstrap_server(self) -> str:
        return "localhost:40003"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> type[FakeContainer]:
    FakeContainer.created = []
    FakeContainer.fail_on_start = set()
    for module, name in [
        ("testcontainers.community.postgres", "PostgresContainer"),
        ("testcontainers.community.redis", "RedisContainer"),
        ("testcontainers.community.kafka", "KafkaContainer"),
    ]:
        monkeypatch.setattr(f"{module}.{name}", FakeContainer)
    return FakeContainer


def test_docker_stack_starts_three_containers(fakes: type[FakeContainer]) -> None:
    with DockerStack() as stack:
        assert stack.backend is Backend.DOCKER
        postgres, redis, kafka = fakes.created
        assert [c.image for c in fakes.created] == [POSTGRES_IMAGE, REDIS_IMAGE, KAFKA_IMAGE]
        assert postgres.command is not None and "fsync=off" in postgres.command
        assert kafka.kraft
        assert stack.postgres_url == "postgresql://postgres:pw@localhost:40001/postgres"
        assert stack.redis_url == "redis://localhost:40002/0"
        assert stack.kafka_bootstrap == "localhost:40003"

        stack.stop_component("kafka")
        assert kafka.docker.status == "paused"
        stack.stop_component("kafka")  # already paused: no-op
        stack.start_component("kafka")
        assert kafka.docker.status == "running"
        stack.restart_component("redis")
        assert redis.docker.status == "running"
        with pytest.raises(ValueError, match="unknown component"):
            stack.stop_component("mongo")
    assert all(c.state == "removed" for c in fakes.created)


def test_docker_stack_start_failure_removes_started_containers(
    fakes: type[FakeContainer],
) -> None:
    fakes.fail_on_start = {KAFKA_IMAGE}
    stack = DockerStack()
    with pytest.raises(ComponentStartError, match="cannot pull"):
        stack.start()
    assert [c.state for c in fakes.created] == ["removed", "removed", "created"]
