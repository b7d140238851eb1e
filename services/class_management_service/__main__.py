"""Stable entry point: ``python -m services.class_management_service <command>``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.class_management_service",
        description="Class Management Service. Configured by CLASS_MANAGEMENT_SERVICE_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every Alembic migration to DATABASE_URL")
    commands.add_parser(
        "serve",
        help="serve the API on HOST:PORT, with the outbox relay unless RELAY_ENABLED=false",
    )
    commands.add_parser(
        "relay",
        help="run the outbox relay (always on); serve only health and metrics on HOST:PORT",
    )
    commands.add_parser("create-topics", help="create every common_core topic on the broker")
    commands.add_parser(
        "publish-state",
        help="write every class's and student's current state to the state topics (via the outbox)",
    )
    args = parser.parse_args(argv)

    if args.command == "migrate":
        from services.class_management_service.migrations import upgrade_to_head

        upgrade_to_head()
    elif args.command == "serve":
        from services.class_management_service.server import serve

        serve()
    elif args.command == "relay":
        from services.class_management_service.server import relay

        relay()
    elif args.command == "create-topics":
        import asyncio

        from services.class_management_service.config import Settings
        from services.class_management_service.topic_setup import create_topics

        asyncio.run(create_topics(Settings().KAFKA_BOOTSTRAP_SERVERS))
    elif args.command == "publish-state":
        import asyncio

        from services.class_management_service.state_publishing import publish_state

        written = asyncio.run(publish_state())
        print(f"wrote the state of {written} classes and students to the outbox")
    return 0


if __name__ == "__main__":
    sys.exit(main())
