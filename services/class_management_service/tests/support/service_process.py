"""The service as it runs in production: ``python -m services.class_management_service serve``
(or ``relay``).

A ``ServiceProcess`` is one such process on a free port, with its output in a log file (so a
chatty process never blocks on a full pipe). Every wait is bounded; ``stop()`` always ends
the process (SIGTERM, then SIGKILL) and is safe to call twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from huleedu_devstack import free_port

from services.class_management_service.config import ENV_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[4]


def service_env(
    database_url: str, redis_url: str, kafka_bootstrap: str, **overrides: object
) -> dict[str, str]:
    """``CLASS_MANAGEMENT_SERVICE_*`` settings for the local stack (the local broker has no
    idempotent producers), short relay back-offs so that tests see recovery quickly, and
    trusted-header mode unless ``AUTH_MODE`` says otherwise."""
    settings: dict[str, object] = {
        "AUTH_MODE": "trusted-header",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "KAFKA_REQUEST_TIMEOUT_MS": 5000,
        "RELAY_POLL_INTERVAL_SECONDS": 0.5,
        "RELAY_MAX_BACKOFF_SECONDS": 2.0,
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }
    settings.update(overrides)
    return {ENV_PREFIX + name: str(value) for name, value in settings.items()}


class ServiceProcess:
    def __init__(
        self, env: Mapping[str, str], log_path: Path, name: str = "cms", command: str = "serve"
    ) -> None:
        self.name = name
        self.command = command
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)},
            **env,
            ENV_PREFIX + "HOST": "127.0.0.1",
            ENV_PREFIX + "PORT": str(self.port),
        }
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        """Start and wait until ``/healthz/live`` answers; fail with the log if it does not."""
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "services.class_management_service", self.command],
            cwd=REPO_ROOT,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ok("/healthz/live", timeout, "answer")
        except AssertionError:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Until ``/healthz`` answers 200 ``ok``: every dependency is up (a 200 ``degraded``
        still serves, but something it reports on is down)."""
        self._wait_until_ok("/healthz", timeout, "be healthy", b'"status":"ok"')

    def _wait_until_ok(self, path: str, timeout: float, what: str, body_holds: bytes = b"") -> None:
        """Poll ``path`` until it answers 200 (with ``body_holds`` in its body, spaces
        ignored); fail with the log if the process exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                code = self._process.returncode if self._process is not None else None
                raise AssertionError(
                    f"{self.name} exited with {code} before it could {what}:\n" + self.log_tail()
                )
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=3) as reply:
                    body = reply.read().replace(b" ", b"")
                    if reply.status == 200 and body_holds in body:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not {what} within {timeout}s:\n" + self.log_tail()
                )
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful shutdown), SIGKILL after ``timeout``; returns the exit code."""
        process = self._process
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            code = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def kill(self) -> None:
        """SIGKILL: the process dies at once, without any shutdown (a crash)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
