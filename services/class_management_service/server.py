"""``serve``: the production ASGI server (uvicorn with uvloop and httptools) around the app.

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


def build_app(settings: Settings) -> Quart:
    """The app as production serves it: ``create_app`` plus process-level tuning."""
    app = create_app(settings)

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
    settings = settings or Settings()
    configure_logging(settings)
    uvicorn.run(
        build_app(settings),
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
