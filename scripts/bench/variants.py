"""Serve the Class Management Service with experimental changes, for the benchmark only.

    uv run python scripts/bench/run_bench.py \\
        --serve-command "python scripts/bench/variants.py workers=2"

Each named variant patches the running process (never a file), so a change to the service
can be measured before anyone makes it. docs/performance.md records what each gave.
Production serves with ``python -m services.class_management_service serve``; nothing
here is used by it. The app is built by ``server.build_app``, as production builds it.

Variants measured earlier and since made part of the service (no pre-ping, reads without
BEGIN/COMMIT, JSON encoded by pydantic-core, no headers dict) are gone from this list; the
pre-ping can still be turned back on with ``--env DATABASE_POOL_PRE_PING=true``.

Variants:
  server=uvicorn      uvicorn + uvloop + httptools, as server.py (the default)
  server=uvicorn-h11  uvicorn + uvloop with the pure-Python h11 parser
  server=hypercorn    hypercorn on uvloop
  server=granian      granian (Rust HTTP server; needs `uv run --with granian`)
  workers=N           N server processes (uvicorn or granian), each with its own pool
  stmt-cache=N        SQLAlchemy's asyncpg prepared-statement cache size (default 100)
  no-metrics          Prometheus observations of the request hook skipped
  no-gc-freeze        without server.build_app's gc.freeze() after start-up (as before it)
  gc-threshold=N      gc.set_threshold(N, 10, 10) (Python's default first threshold is 700)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.class_management_service import di
from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.logging_setup import configure_logging
from services.class_management_service.server import build_app


def _patch_engine(**changes: Any) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    original = di.build_engine

    def build_engine(settings: Settings) -> Any:
        engine = original(settings)
        url = engine.url
        options: dict[str, Any] = {
            "pool_size": settings.DATABASE_POOL_SIZE,
            "max_overflow": settings.DATABASE_MAX_OVERFLOW,
            "pool_timeout": settings.DATABASE_POOL_TIMEOUT_SECONDS,
            "pool_pre_ping": settings.DATABASE_POOL_PRE_PING,
            "connect_args": {
                "timeout": settings.DATABASE_CONNECT_TIMEOUT_SECONDS,
                "command_timeout": settings.DATABASE_STATEMENT_TIMEOUT_MS / 1000 or None,
                "server_settings": {
                    "application_name": "class_management_service",
                    "statement_timeout": str(settings.DATABASE_STATEMENT_TIMEOUT_MS),
                },
            },
        }
        for key, value in changes.items():
            if key == "prepared_statement_cache_size":
                options["connect_args"][key] = value
            else:
                options[key] = value
        return create_async_engine(url, **options)

    di.build_engine = build_engine


def _patch_no_metrics() -> None:
    from services.class_management_service import metrics

    class _Nothing:
        def labels(self, *args: Any) -> _Nothing:
            return self

        def inc(self, *args: Any) -> None:
            pass

        def observe(self, *args: Any) -> None:
            pass

    metrics.HTTP_REQUESTS = _Nothing()  # type: ignore[assignment]
    metrics.HTTP_REQUEST_DURATION = _Nothing()  # type: ignore[assignment]
    metrics.DB_OPERATION_DURATION = _Nothing()  # type: ignore[assignment]


def build(variants: list[str]) -> tuple[Any, Settings, str]:
    settings = Settings()
    server = "uvicorn"
    engine_changes: dict[str, Any] = {}
    for variant in variants:
        name, _, value = variant.partition("=")
        if name == "server":
            server = value
        elif name in ("workers", "no-gc-freeze"):
            pass
        elif name == "gc-threshold":
            import gc

            gc.set_threshold(int(value), 10, 10)
        elif name == "stmt-cache":
            engine_changes["prepared_statement_cache_size"] = int(value)
        elif name == "no-metrics":
            _patch_no_metrics()
        else:
            raise SystemExit(f"unknown variant {variant!r}\n{__doc__}")
    if engine_changes:
        _patch_engine(**engine_changes)
    app = create_app(settings) if "no-gc-freeze" in variants else build_app(settings)
    return app, settings, server


def app_factory() -> Any:
    """For granian's --factory: variants come from BENCH_VARIANTS."""
    app, settings, _ = build(os.environ.get("BENCH_VARIANTS", "").split())
    configure_logging(settings)
    return app


def main(argv: list[str]) -> None:
    workers = next((int(v.split("=", 1)[1]) for v in argv if v.startswith("workers=")), 1)
    app, settings, server = build(argv)
    configure_logging(settings)
    if server in ("uvicorn", "uvicorn-h11"):
        import uvicorn

        # Several workers each build the app themselves, from the same variants.
        os.environ["BENCH_VARIANTS"] = " ".join(argv)
        uvicorn.run(
            "scripts.bench.variants:app_factory" if workers > 1 else app,
            factory=workers > 1,
            workers=workers,
            host=settings.HOST,
            port=settings.PORT,
            loop="uvloop",
            http="httptools" if server == "uvicorn" else "h11",
            lifespan="on",
            access_log=False,
            log_config=None,
            server_header=False,
        )
    elif server == "hypercorn":
        import uvloop
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"{settings.HOST}:{settings.PORT}"]
        config.accesslog = None
        uvloop.run(serve(app, config))  # type: ignore[arg-type]
    elif server == "granian":
        os.environ["BENCH_VARIANTS"] = " ".join(v for v in argv if not v.startswith("server="))
        os.execvp(
            sys.executable,
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--factory",
                "--host",
                settings.HOST,
                "--port",
                str(settings.PORT),
                "--loop",
                "uvloop",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "scripts.bench.variants:app_factory",
            ],
        )
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
