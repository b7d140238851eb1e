"""free_port: the one port picker of the repository (devstack, service tests, bench)."""

from __future__ import annotations

import socket

import huleedu_devstack
from huleedu_devstack import free_port


def test_free_port_is_exported_and_bindable_on_loopback() -> None:
    assert "free_port" in huleedu_devstack.__all__
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # raises if the port was not free
        assert sock.getsockname()[1] == port
