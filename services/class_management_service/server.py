"""``serve``: the production ASGI server (uvicorn with uvloop and httptools) around the app."""

from __future__ import annotations

import uvicorn

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.logging_setup import configure_logging


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
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
