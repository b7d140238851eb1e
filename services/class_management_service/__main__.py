"""Stable entry point: ``python -m services.class_management_service <command>``.

A setting that does not validate ends any command with one line per invalid setting on
stderr and exit code 2 (no traceback); a database that ``migrate`` cannot reach (or a broker
``create-topics`` cannot), with one line naming it and exit code 1.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from services.class_management_service.config import Settings, SettingsError, settings_problems

EXIT_INVALID_SETTINGS = 2
EXIT_UNREACHABLE = 1


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
    token = commands.add_parser(
        "token",
        help="print a bearer token for a user, signed with JWT_SECRET_KEY (development)",
    )
    token.add_argument("--user", required=True, help="the user id (the token's sub)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C before the server handles signals (while importing)
        return 130
    except SettingsError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        for line in settings_problems(error):
            print(f"{args.command}: {line}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS


def _run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "migrate":
        from services.class_management_service.migrations import (
            DatabaseUnreachableError,
            migrate,
        )

        try:
            print(migrate(), flush=True)
        except DatabaseUnreachableError as error:
            print(f"migrate: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE
    elif command == "serve":
        from services.class_management_service.server import serve

        serve()
    elif command == "relay":
        from services.class_management_service.server import relay

        relay()
    elif command == "create-topics":
        import asyncio

        from common_core.events.topics import ALL_TOPICS

        from services.class_management_service.topic_setup import TopicSetupError, create_topics

        bootstrap = Settings().KAFKA_BOOTSTRAP_SERVERS
        try:
            created = asyncio.run(create_topics(bootstrap))
        except TopicSetupError as error:
            print(f"create-topics: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE
        print(f"Kafka at {bootstrap}: {len(ALL_TOPICS)} topics ready ({len(created)} created)")
    elif command == "publish-state":
        import asyncio

        from services.class_management_service.state_publishing import publish_state

        written = asyncio.run(publish_state())
        print(f"wrote the state of {written} classes and students to the outbox")
    elif command == "token":
        return _print_token(args.user, args.ttl)
    return 0


def _print_token(user_id: str, ttl_seconds: int) -> int:
    from services.class_management_service.api.authentication import is_valid_user_id
    from services.class_management_service.implementations.jwt_token_verifier_impl import (
        issue_token,
    )

    if not is_valid_user_id(user_id.strip()) or ttl_seconds < 1:
        print("token: --user must be 1-255 printable characters, --ttl >= 1", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    settings = Settings()
    try:
        print(issue_token(settings, user_id.strip(), ttl_seconds))
    except ValueError as error:
        print(f"token: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    return 0


if __name__ == "__main__":
    sys.exit(main())
