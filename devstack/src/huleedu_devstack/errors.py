"""Exceptions raised by huleedu_devstack."""

from __future__ import annotations


class DevstackError(RuntimeError):
    """Base class of every error raised by huleedu_devstack."""


class DevstackConfigError(DevstackError, ValueError):
    """The HULEEDU_DEVSTACK_* environment variables are inconsistent or invalid."""


class MissingBinariesError(DevstackError):
    """PostgreSQL, redis-server or the tansu broker is not installed."""


class ComponentStartError(DevstackError):
    """A component process could not be started or did not become ready in time."""


class FaultControlUnsupported(DevstackError):
    """The backend cannot stop/start individual components."""
