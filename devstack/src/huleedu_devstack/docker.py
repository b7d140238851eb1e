"""DockerStack: the same three services as throwaway containers via testcontainers.

Images: postgres:15 (same durability-off settings as LocalStack), redis:7 and
confluentinc/cp-kafka:7.6.0 in KRaft mode (testcontainers' KafkaContainer drives
the Confluent image's start scripts, so an apache/kafka image does not fit it).
testcontainers' Ryuk sidecar removes the containers if this process dies.

Fault control is best effort: ``stop_component`` pauses the container and
``start_component`` unpauses it (same host port; all data survives).
While paused, connections hang instead of being refused, so clients see
timeouts rather than "connection refused". ``restart_component`` is pause + unpause.
"""

from __future__ import annotations

from typing import Any

from huleedu_devstack import databases
from huleedu_devstack._context import StartStopContext
from huleedu_devstack.backend import Backend
from huleedu_devstack.errors import ComponentStartError, DevstackError
from huleedu_devstack.local import COMPONENTS, Component, check_component

POSTGRES_IMAGE = "postgres:15"
REDIS_IMAGE = "redis:7"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"

_POSTGRES_COMMAND = (
    "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
)


def _container_classes() -> tuple[Any, Any, Any]:
    """testcontainers' Kafka, Postgres and Redis classes (new and pre-``community`` layout)."""
    try:
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.community.redis import RedisContainer
    except ImportError:
        try:
            from testcontainers.kafka import KafkaContainer
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer
        except ImportError as exc:
            raise DevstackError(
                f"DockerStack needs testcontainers[postgres,redis,kafka] (run `make setup`): {exc}"
            ) from exc
    return KafkaContainer, PostgresContainer, RedisContainer


class DockerStack(StartStopContext):
    backend = Backend.DOCKER

    def __init__(
        self,
        *,
        postgres_image: str = POSTGRES_IMAGE,
        redis_image: str = REDIS_IMAGE,
        kafka_image: str = KAFKA_IMAGE,
    ) -> None:
        self._images = {"postgres": postgres_image, "redis": redis_image, "kafka": kafka_image}
        self._containers: dict[Component, Any] = {}
        self._urls: dict[Component, str] = {}

    @property
    def postgres_url(self) -> str:
        return self._url("postgres")

    @property
    def redis_url(self) -> str:
        return self._url("redis")

    @property
    def kafka_bootstrap(self) -> str:
        return self._url("kafka")

    def _url(self, component: Component) -> str:
        if component not in self._urls:
            raise DevstackError("DockerStack is not started; call start() first")
        return self._urls[component]

    def start(self) -> None:
        if self._urls:
            return
        KafkaContainer, PostgresContainer, RedisContainer = _container_classes()
        try:
            postgres = PostgresContainer(
                self._images["postgres"],
                username="postgres",
                password="postgres",
                dbname="postgres",
                driver=None,
            ).with_command(_POSTGRES_COMMAND)
            self._containers["postgres"] = postgres.start()
            self._urls["postgres"] = postgres.get_connection_url(driver=None)

            redis = RedisContainer(self._images["redis"])
            self._containers["redis"] = redis.start()
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(redis.port)
            self._urls["redis"] = f"redis://{host}:{port}/0"

            kafka = KafkaContainer(self._images["kafka"]).with_kraft()
            self._containers["kafka"] = kafka.start()
            self._urls["kafka"] = kafka.get_bootstrap_server()
        except BaseException as exc:
            self.stop()
            if isinstance(exc, Exception):
                raise ComponentStartError(f"DockerStack could not start: {exc}") from exc
            raise

    def stop(self) -> None:
        containers, self._containers = self._containers, {}
        self._urls = {}
        for container in containers.values():
            try:
                container.stop()
            except Exception:
                pass

    def _docker_container(self, name: str) -> Any:
        component = check_component(name)
        if component not in self._containers:
            raise DevstackError("DockerStack is not started; call start() first")
        return self._containers[component].get_wrapped_container()

    def stop_component(self, name: str) -> None:
        """Pause the component's container (best effort; see module docstring)."""
        container = self._docker_container(name)
        container.reload()
        if container.status != "paused":
            container.pause()

    def start_component(self, name: str) -> None:
        """Unpause the component's container."""
        container = self._docker_container(name)
        container.reload()
        if container.status == "paused":
            container.unpause()

    def restart_component(self, name: str) -> None:
        self.stop_component(name)
        self.start_component(name)

    def create_database(self, name: str, template: str | None = None) -> str:
        return databases.create_database(self.postgres_url, name, template)

    def drop_database(self, name: str) -> None:
        databases.drop_database(self.postgres_url, name)


__all__ = ["COMPONENTS", "KAFKA_IMAGE", "POSTGRES_IMAGE", "REDIS_IMAGE", "DockerStack"]
