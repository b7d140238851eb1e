"""Settings of the Class Management Service, read only from ``CLASS_MANAGEMENT_SERVICE_*``."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAME = "class_management_service"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """One settings object; each field is read from ``CLASS_MANAGEMENT_SERVICE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CLASS_MANAGEMENT_SERVICE_", extra="ignore")

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
                return "postgresql+asyncpg://" + value[len(prefix) :]
        return value
