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

import uvicorn
from quart import Quart

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.logging_setup import configure_logging


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


def _run(settings: Settings, *, api: bool) -> None:
    configure_logging(settings)
    uvicorn.run(
        build_app(settings, api=api),
        host=settings.HOST,
        port=settings.PORT,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
