"""``serve`` and ``relay``: the production ASGI server (uvicorn with uvloop and httptools)
around the app.

``serve`` answers the API (and, unless RELAY_ENABLED=false, relays the outbox in the same
process). ``relay`` runs the outbox relay and its Redis wake listener in a process of its
own that serves only health and metrics: under load, a relay sharing the API's event loop
waits behind the requests (docs/performance.md).

Every setting here that concerns speed is measured by ``make bench``: see
docs/performance.md for the numbers behind it.
"""

from __future__ import annotations

import gc
import logging
import signal
from types import FrameType

import uvicorn
from quart import Quart

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.logging_setup import configure_logging

logger = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """uvicorn, where every stop signal means the same graceful shutdown.

    A terminal's Ctrl-C reaches every process of its foreground group (``make``, the
    devstack, the service), and a launcher may forward it once more; an impatient operator
    presses it twice. Plain uvicorn takes a second SIGINT as "force exit": it skips the
    lifespan shutdown (the app's relay, producer and engine are never closed), and the
    event loop then cancels the lifespan task mid-flight (``Exception in 'lifespan'
    protocol``, a CancelledError traceback). It also re-raises the signal after a graceful
    shutdown, which for SIGINT is a KeyboardInterrupt traceback. Here SIGINT and SIGTERM
    (``docker stop``), once or many times, start one graceful shutdown, bounded by
    ``timeout_graceful_shutdown`` and the app's own shutdown bounds, and the process then
    exits 0.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            logger.info("%s received: stopping gracefully", signal.Signals(sig).name)
        self.should_exit = True


def build_app(settings: Settings, *, api: bool = True) -> Quart:
    """The app as production serves it: ``create_app`` plus process-level tuning."""
    app = create_app(settings, api=api)

    @app.before_serving
    async def _freeze_startup_objects() -> None:
        # Registered after the app's own start-up, so it runs once everything long-lived
        # exists (modules, models, schemas, the container, the engine). Frozen objects are
        # never scanned again by the cyclic GC, whose full collections otherwise walk them
        # all every few hundred requests and stall the event loop: p99 of GET /healthz/live
        # at 16 connections went from 85 ms to 8 ms (docs/performance.md).
        gc.collect()
        gc.freeze()

    return app


def serve(settings: Settings | None = None) -> None:
    """The API on HOST:PORT, with the outbox relay unless RELAY_ENABLED=false."""
    _run(settings or Settings(), api=True)


def relay(settings: Settings | None = None) -> None:
    """The outbox relay, whatever RELAY_ENABLED says; only health and metrics on HOST:PORT."""
    _run((settings or Settings()).model_copy(update={"RELAY_ENABLED": True}), api=False)


KEEP_ALIVE_SECONDS = 75


def _run(settings: Settings, *, api: bool) -> None:
    configure_logging(settings)
    config = uvicorn.Config(
        build_app(settings, api=api),
        host=settings.HOST,
        port=settings.PORT,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        # Longer than a gateway's or load balancer's idle timeout (commonly 60 s): with
        # uvicorn's 5 s a client that reuses a connection just as the server closes it gets a
        # reset instead of an answer (seen as httpx.ReadError on a busy machine).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=10,
    )
    GracefulServer(config).run()
