"""Which kind of stack to use: services given by the environment, Docker, or local processes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from enum import StrEnum

from huleedu_devstack.errors import DevstackConfigError

POSTGRES_URL_ENV = "HULEEDU_DEVSTACK_POSTGRES_URL"
REDIS_URL_ENV = "HULEEDU_DEVSTACK_REDIS_URL"
KAFKA_BOOTSTRAP_ENV = "HULEEDU_DEVSTACK_KAFKA_BOOTSTRAP"
BACKEND_ENV = "HULEEDU_DEVSTACK_BACKEND"

#: The variables that together name an already running set of services.
EXTERNAL_ENV_VARS: tuple[str, ...] = (POSTGRES_URL_ENV, REDIS_URL_ENV, KAFKA_BOOTSTRAP_ENV)


class Backend(StrEnum):
    EXTERNAL = "external"
    DOCKER = "docker"
    LOCAL = "local"


def choose_backend(environ: Mapping[str, str], docker_available: bool) -> Backend:
    """Pick the backend. Pure: looks only at its arguments.

    1. All of HULEEDU_DEVSTACK_POSTGRES_URL / _REDIS_URL / _KAFKA_BOOTSTRAP set -> EXTERNAL.
       Only some of them set -> DevstackConfigError naming the missing ones.
    2. HULEEDU_DEVSTACK_BACKEND=local|docker (case-insensitive) forces that backend
       (``external`` is accepted too, but then the three variables are required).
    3. DOCKER when a Docker engine is available, else LOCAL.

    Empty or whitespace-only values count as unset.
    """
    present = [name for name in EXTERNAL_ENV_VARS if environ.get(name, "").strip()]
    missing = [name for name in EXTERNAL_ENV_VARS if name not in present]
    forced = environ.get(BACKEND_ENV, "").strip().lower()

    if present and missing:
        raise DevstackConfigError(
            f"{', '.join(present)} set but {', '.join(missing)} missing: set all of "
            f"{', '.join(EXTERNAL_ENV_VARS)} to use running services, or none of them"
        )
    if not missing:
        return Backend.EXTERNAL
    if forced:
        try:
            backend = Backend(forced)
        except ValueError:
            allowed = "|".join(b.value for b in Backend)
            raise DevstackConfigError(
                f"{BACKEND_ENV}={environ[BACKEND_ENV]!r} is not one of {allowed}"
            ) from None
        if backend is Backend.EXTERNAL:
            raise DevstackConfigError(
                f"{BACKEND_ENV}=external needs {', '.join(EXTERNAL_ENV_VARS)} to be set"
            )
        return backend
    return Backend.DOCKER if docker_available else Backend.LOCAL


def docker_engine_available(timeout: float = 3.0) -> bool:
    """True when the ``docker`` CLI exists and ``docker info`` succeeds within ``timeout``."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def docker_probe_needed(environ: Mapping[str, str]) -> bool:
    """False when choose_backend's answer cannot depend on Docker availability."""
    if environ.get(BACKEND_ENV, "").strip():
        return False
    return not any(environ.get(name, "").strip() for name in EXTERNAL_ENV_VARS)
