"""ExternalStack: services that are already running, named by HULEEDU_DEVSTACK_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from huleedu_devstack import databases
from huleedu_devstack._context import StartStopContext
from huleedu_devstack.backend import (
    EXTERNAL_ENV_VARS,
    KAFKA_BOOTSTRAP_ENV,
    POSTGRES_URL_ENV,
    REDIS_URL_ENV,
    Backend,
)
from huleedu_devstack.errors import DevstackConfigError, FaultControlUnsupported
from huleedu_devstack.local import check_component


class ExternalStack(StartStopContext):
    """Wraps given URLs. start()/stop() do nothing: this process does not own the services.

    create_database/drop_database work (the postgres URL must be allowed to create
    databases); fault control raises FaultControlUnsupported.
    """

    backend = Backend.EXTERNAL

    def __init__(self, postgres_url: str, redis_url: str, kafka_bootstrap: str) -> None:
        self.postgres_url = postgres_url
        self.redis_url = redis_url
        self.kafka_bootstrap = kafka_bootstrap

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> ExternalStack:
        missing = [name for name in EXTERNAL_ENV_VARS if not environ.get(name, "").strip()]
        if missing:
            raise DevstackConfigError(f"ExternalStack needs {', '.join(missing)} to be set")
        return cls(
            postgres_url=environ[POSTGRES_URL_ENV].strip(),
            redis_url=environ[REDIS_URL_ENV].strip(),
            kafka_bootstrap=environ[KAFKA_BOOTSTRAP_ENV].strip(),
        )

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _unsupported(self, action: str, name: str) -> FaultControlUnsupported:
        check_component(name)
        return FaultControlUnsupported(
            f"cannot {action} {name!r}: the external backend (services named by "
            f"{', '.join(EXTERNAL_ENV_VARS)}) has no fault control; unset those variables "
            "to use the local or docker backend"
        )

    def stop_component(self, name: str) -> None:
        raise self._unsupported("stop", name)

    def start_component(self, name: str) -> None:
        raise self._unsupported("start", name)

    def restart_component(self, name: str) -> None:
        raise self._unsupported("restart", name)

    def create_database(self, name: str, template: str | None = None) -> str:
        return databases.create_database(self.postgres_url, name, template)

    def drop_database(self, name: str) -> None:
        databases.drop_database(self.postgres_url, name)
