"""Settings of the Class Management Service, read only from ``CLASS_MANAGEMENT_SERVICE_*``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.class_management_service.secrets_masking import MASK, mask_url_passwords

SERVICE_NAME = "class_management_service"
ENV_PREFIX = "CLASS_MANAGEMENT_SERVICE_"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# The algorithms a token may be signed with, by the key that verifies them. "none" is
# never one of them; HMAC keys must be at least as long as the hash (RFC 7518 3.2).
HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
PUBLIC_KEY_ALGORITHMS = {
    **{name: "RSA" for name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    **{name: "EC" for name in ("ES256", "ES384", "ES512")},
}


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class AuthMode(StrEnum):
    """Who says who the caller is: a verified JWT, or a gateway that sets X-User-ID."""

    JWT = "jwt"
    TRUSTED_HEADER = "trusted-header"


class Settings(BaseSettings):
    """One settings object; each field is read from ``CLASS_MANAGEMENT_SERVICE_<FIELD>``."""

    # hide_input_in_errors: an invalid setting's error never repeats the others' values
    # (the database password, the JWT secret).
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True
    )

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

    # Authentication (docs/security.md). In jwt mode every /v1 request needs a bearer token
    # signed with one of JWT_ALGORITHMS (comma-separated): HS* with JWT_SECRET_KEY, RS*/PS*/
    # ES* with JWT_PUBLIC_KEY (a PEM).
    AUTH_MODE: AuthMode = AuthMode.JWT
    JWT_ALGORITHMS: Annotated[tuple[str, ...], NoDecode] = ("HS256",)
    JWT_SECRET_KEY: SecretStr | None = None
    JWT_PUBLIC_KEY: str | None = None
    JWT_AUDIENCE: str = Field(default="huledu-services", min_length=1)
    JWT_ISSUER: str | None = None
    JWT_LEEWAY_SECONDS: float = Field(default=30.0, ge=0, le=300)

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

    @field_validator("JWT_ALGORITHMS", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("JWT_SECRET_KEY", "JWT_PUBLIC_KEY", "JWT_ISSUER", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _auth_settings_are_usable(self) -> Settings:
        """Whatever the mode: known algorithms only ("none" never), and the keys given fit
        them. Whether jwt mode has its keys is asked by the API (``require_token_keys``)."""
        known = HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS
        unknown = [a for a in self.JWT_ALGORITHMS if a not in known]
        if unknown or not self.JWT_ALGORITHMS:
            raise ValueError(
                f"{ENV_PREFIX}JWT_ALGORITHMS must list some of {', '.join(known)};"
                f" not {', '.join(unknown)}"
            )
        for algorithm in self.JWT_ALGORITHMS:
            if algorithm in HMAC_ALGORITHMS and self.JWT_SECRET_KEY is not None:
                _check_secret(self.JWT_SECRET_KEY, algorithm)
            elif algorithm in PUBLIC_KEY_ALGORITHMS and self.JWT_PUBLIC_KEY is not None:
                public_key_for(self.JWT_PUBLIC_KEY, algorithm)
        return self

    def require_token_keys(self) -> None:
        """In jwt mode, every allowed algorithm has its key. Raises SettingsError naming the
        missing setting: the API refuses to start without it (migrate, relay and
        create-topics verify no token and do not ask)."""
        if self.AUTH_MODE is not AuthMode.JWT:
            return
        for algorithm in self.JWT_ALGORITHMS:
            if algorithm in HMAC_ALGORITHMS and self.JWT_SECRET_KEY is None:
                raise _missing("JWT_SECRET_KEY", algorithm)
            if algorithm in PUBLIC_KEY_ALGORITHMS and self.JWT_PUBLIC_KEY is None:
                raise _missing("JWT_PUBLIC_KEY", algorithm)


class SettingsError(ValueError):
    """Settings that validate one by one but cannot serve: one line saying what to set."""


def _missing(name: str, algorithm: str) -> SettingsError:
    return SettingsError(
        f"{ENV_PREFIX}AUTH_MODE=jwt with {algorithm} needs {ENV_PREFIX}{name}"
        f" (or set {ENV_PREFIX}AUTH_MODE=trusted-header behind a gateway that sets X-User-ID)"
    )


def _check_secret(secret: SecretStr, algorithm: str) -> None:
    if len(secret.get_secret_value().encode()) < HMAC_ALGORITHMS[algorithm]:
        raise ValueError(
            f"{ENV_PREFIX}JWT_SECRET_KEY must be at least {HMAC_ALGORITHMS[algorithm]} bytes"
            f" for {algorithm}"
        )


def public_key_for(pem: str, algorithm: str) -> PublicKey:
    """The PEM's public key, which must be of the kind ``algorithm`` verifies with."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"{ENV_PREFIX}JWT_PUBLIC_KEY is not a PEM public key") from None
    kind = PUBLIC_KEY_ALGORITHMS[algorithm]
    if kind == "RSA" and isinstance(key, rsa.RSAPublicKey):
        return key
    if kind == "EC" and isinstance(key, ec.EllipticCurvePublicKey):
        return key
    raise ValueError(f"{ENV_PREFIX}JWT_PUBLIC_KEY is not an {kind} key, which {algorithm} needs")


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


def database_address(database_url: str) -> str:
    """``host:port/database`` of a database URL: what operators need to find it."""
    url = make_url(database_url)
    return f"{url.host}:{url.port or 5432}/{url.database}"


def settings_problems(error: ValidationError) -> list[str]:
    """One line per invalid setting: the full variable, its value (a secret's masked, a URL's
    password masked), the problem, what is accepted. Any field of ``Settings`` gets this for
    free; a problem of several settings together names them in its message, without values."""
    lines = []
    for problem in error.errors(include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        accepted = _ACCEPTED.get(problem["type"])
        if accepted:
            message += f"; {accepted}"
        if not problem["loc"]:
            lines.append(f"invalid settings: {message}")
            continue
        field = ".".join(str(part) for part in problem["loc"])
        shown = MASK if field in _SECRET_SETTINGS else mask_url_passwords(str(problem["input"]))
        lines.append(f"invalid setting {ENV_PREFIX}{field}={shown!r}: {message}")
    return lines


# Settings whose value is never repeated, not even in the line saying it is invalid.
_SECRET_SETTINGS = frozenset({"JWT_SECRET_KEY"})
