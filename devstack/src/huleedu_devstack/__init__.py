"""Real PostgreSQL, Redis and a Kafka-protocol broker for development and tests.

Backends (see :func:`huleedu_devstack.backend.choose_backend`):

* external: services named by HULEEDU_DEVSTACK_POSTGRES_URL / _REDIS_URL / _KAFKA_BOOTSTRAP
* docker:   throwaway containers via testcontainers
* local:    local processes (PostgreSQL server binaries, redis-server, tansu) - no Docker

Entry points: :func:`open_stack`, :func:`free_port` (for servers of one's own next to the
stack), the pytest plugin (fixtures ``devstack``,
``postgres_url``, ``redis_url``, ``kafka_bootstrap``, ``fresh_database_url``,
``database_factory``, ``clean_redis``) and ``python -m huleedu_devstack up|run``.
"""

from huleedu_devstack._procs import free_port
from huleedu_devstack.backend import (
    BACKEND_ENV,
    KAFKA_BOOTSTRAP_ENV,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    Backend,
    choose_backend,
    docker_engine_available,
)
from huleedu_devstack.errors import (
    ComponentStartError,
    DevstackConfigError,
    DevstackError,
    FaultControlUnsupported,
    MissingBinariesError,
)
from huleedu_devstack.stack import Stack, create_stack, open_stack

__all__ = [
    "BACKEND_ENV",
    "KAFKA_BOOTSTRAP_ENV",
    "POSTGRES_URL_ENV",
    "REDIS_URL_ENV",
    "Backend",
    "ComponentStartError",
    "DevstackConfigError",
    "DevstackError",
    "FaultControlUnsupported",
    "MissingBinariesError",
    "Stack",
    "choose_backend",
    "create_stack",
    "docker_engine_available",
    "free_port",
    "open_stack",
]
