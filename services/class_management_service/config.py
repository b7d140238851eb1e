"""Settings of the Class Management Service, read only from ``CLASS_MANAGEMENT_SERVICE_*``."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SERVICE_NAME = "class_management_service"
ENV_PREFIX = "CLASS_MANAGEMENT_SERVICE_"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """One settings object; each field is read from ``CLASS_MANAGEMENT_SERVICE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    DATABASE_URL: str = "postgresql+asyncpg://huleedu:huleedu@127.0.0.1:5435/class_management"
    DATABASE_POOL_SIZE: int = Field(default=20, ge=1)
    DATABASE_MAX_OVERFLOW: int = Field(default=10, ge=0)
    DATABASE_POOL_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    DATABASE_STATEMENT_TIMEOUT_MS: int = Field(default=10_000, ge=0)
    DATABASE_CONNECT_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    # A round trip per checkout. Off: a connection the database dropped fails its next
    # statement instead; the pool then replaces every older connection and reads retry once.
    DATABASE_POOL_PRE_PING: bool = False

    KAFKA_BOOTSTRAP_SERVERS: str = "127.0.0.1:9092"
    KAFKA_ENABLE_IDEMPOTENCE: bool = True
    KAFKA_CLIENT_ID: str = SERVICE_NAME
    KAFKA_REQUEST_TIMEOUT_MS: int = Field(default=10_000, ge=1000)

    REDIS_URL: str = "redis://127.0.0.1:6379/0"

    HOST: str = "0.0.0.0"
    PORT: int = Field(default=5002, ge=1, le=65535)
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: LogFormat = LogFormat.TEXT
    MAX_BODY_BYTES: int = Field(default=1_048_576, ge=1024)
    REQUEST_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)

    RELAY_ENABLED: bool = True
    RELAY_BATCH_SIZE: int = Field(default=100, ge=1)
    RELAY_POLL_INTERVAL_SECONDS: float = Field(default=1.0, gt=0)
    RELAY_MAX_BACKOFF_SECONDS: float = Field(default=10.0, gt=0)
    RELAY_MAX_ATTEMPTS: int = Field(default=8, ge=1)
    RELAY_MAX_MESSAGE_BYTES: int = Field(default=1_000_000, ge=1024)
    # Under load, wake the relays through Redis at most once per this many seconds (every
    # commit is still followed by a wake-up, at most this much later).
    OUTBOX_WAKE_MIN_INTERVAL_SECONDS: float = Field(default=0.005, ge=0, le=1)

    IDEMPOTENCY_TTL_SECONDS: int = Field(default=86_400, ge=1)

    @field_validator("DATABASE_URL")
    @classmethod
    def _use_asyncpg_driver(cls, value: str) -> str:
        """Accept a plain ``postgresql://`` URL (as tools print it) and select asyncpg."""
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                value = "postgresql+asyncpg://" + value[len(prefix) :]
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(_POSTGRES_URL_EXPECTED) from None
        if url.drivername != "postgresql+asyncpg":
            raise ValueError(_POSTGRES_URL_EXPECTED)
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError("not a log level; accepted: " + ", ".join(LOG_LEVELS))
        return level


_POSTGRES_URL_EXPECTED = (
    "not a PostgreSQL URL; accepted: postgresql://user:password@host:port/database"
    " (or postgresql+asyncpg://...)"
)
# What each kind of pydantic error accepts, where its own message does not say it.
_ACCEPTED = {
    "bool_parsing": "accepted: true, false, 1, 0, yes, no, on, off",
    "bool_type": "accepted: true, false, 1, 0, yes, no, on, off",
    "int_parsing": "accepted: a whole number",
    "int_from_float": "accepted: a whole number",
    "float_parsing": "accepted: a number",
}


def masked(value: object) -> str:
    """``value`` as text, the password of any URL in it replaced by ``***``."""
    text = str(value)
    if "://" not in text:
        return text
    try:
        return make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        return text


def database_address(database_url: str) -> str:
    """``host:port/database`` of a database URL: what operators need to find it."""
    url = make_url(database_url)
    return f"{url.host}:{url.port or 5432}/{url.database}"


def settings_problems(error: ValidationError) -> list[str]:
    """One line per invalid setting: the full variable, its value, the problem, what is
    accepted. Any field of ``Settings`` gets this for free."""
    lines = []
    for problem in error.errors(include_url=False):
        name = ENV_PREFIX + ".".join(str(part) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        accepted = _ACCEPTED.get(problem["type"])
        if accepted:
            message += f"; {accepted}"
        lines.append(f"invalid setting {name}={masked(problem.get('input', ''))!r}: {message}")
    return lines
