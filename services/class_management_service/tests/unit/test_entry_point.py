"""The entry point's commands and the apps ``serve`` and ``relay`` hand to the server.

No server is started: GracefulServer.run is replaced by a recorder (the real processes are run in
tests/integration/test_relay_process.py).
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
import uvicorn
from quart import Quart

from services.class_management_service import server
from services.class_management_service.__main__ import main
from services.class_management_service.config import AuthMode, Settings


@pytest.mark.parametrize("command", ["serve", "relay"])
def test_main_runs_the_server_function_of_the_command(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []
    for name in ("serve", "relay"):
        monkeypatch.setattr(server, name, lambda name=name: called.append(name))
    assert main([command]) == 0
    assert called == [command]


class _Recorded:
    def __init__(self) -> None:
        self.settings: list[Settings] = []
        self.apps: list[Quart] = []
        self.options: list[dict[str, Any]] = []


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> _Recorded:
    record = _Recorded()
    build_app = server.build_app

    def recording_build_app(settings: Settings, *, api: bool = True) -> Quart:
        record.settings.append(settings)
        return build_app(settings, api=api)

    def recording_run(self: server.GracefulServer, sockets: Any = None) -> None:
        record.apps.append(self.config.app)
        record.options.append(vars(self.config))

    monkeypatch.setattr(server, "build_app", recording_build_app)
    monkeypatch.setattr(server, "configure_logging", lambda settings: None)
    monkeypatch.setattr(server.GracefulServer, "run", recording_run)
    return record


def _routes(app: Quart) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()}


HEALTH_ROUTES = {"/healthz", "/healthz/live", "/metrics"}


@pytest.mark.parametrize("relay_enabled", [True, False])
def test_relay_serves_health_and_metrics_only_and_always_relays(
    relay_enabled: bool, recorded: _Recorded
) -> None:
    server.relay(Settings(RELAY_ENABLED=relay_enabled, HOST="127.0.0.1", PORT=5999))
    ((settings,), (app,), (options,)) = recorded.settings, recorded.apps, recorded.options
    assert settings.RELAY_ENABLED is True
    assert HEALTH_ROUTES <= _routes(app)
    assert not [route for route in _routes(app) if route.startswith("/v1")]
    assert (options["host"], options["port"]) == ("127.0.0.1", 5999)
    assert (options["loop"], options["http"]) == ("uvloop", "httptools")


@pytest.mark.parametrize("relay_enabled", [True, False])
def test_serve_serves_the_api_and_keeps_relay_enabled_as_set(
    relay_enabled: bool, recorded: _Recorded
) -> None:
    server.serve(Settings(RELAY_ENABLED=relay_enabled, AUTH_MODE=AuthMode.TRUSTED_HEADER))
    ((settings,), (app,)) = recorded.settings, recorded.apps
    assert settings.RELAY_ENABLED is relay_enabled
    assert HEALTH_ROUTES | {"/v1/classes", "/v1/classes/students"} <= _routes(app)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_every_stop_signal_asks_for_one_graceful_shutdown(signum: int) -> None:
    # A second Ctrl-C (or a launcher forwarding the terminal's) must not force an exit
    # that skips the app's shutdown, and nothing is re-raised after it (no traceback).
    graceful = server.GracefulServer(uvicorn.Config(Quart(__name__)))
    for _ in range(3):
        graceful.handle_exit(signum, None)
        assert (graceful.should_exit, graceful.force_exit) == (True, False)
    assert graceful._captured_signals == []
