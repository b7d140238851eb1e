"""Stable entry point: ``python -m services.class_management_service <command>``."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from services.class_management_service.config import SettingsError, settings_error_line


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
    token = commands.add_parser(
        "token",
        help="print a bearer token for a user, signed with JWT_SECRET_KEY (development)",
    )
    token.add_argument("--user", required=True, help="the user id (the token's sub)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValidationError, SettingsError) as error:
        print(f"{parser.prog} {args.command}: {settings_error_line(error)}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
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
    elif args.command == "token":
        return _print_token(args.user, args.ttl)
    return 0


def _print_token(user_id: str, ttl_seconds: int) -> int:
    from services.class_management_service.api.authentication import is_valid_user_id
    from services.class_management_service.config import Settings
    from services.class_management_service.implementations.jwt_token_verifier_impl import (
        issue_token,
    )

    if not is_valid_user_id(user_id.strip()) or ttl_seconds < 1:
        print("token: --user must be 1-255 printable characters, --ttl >= 1", file=sys.stderr)
        return 2
    settings = Settings()
    try:
        print(issue_token(settings, user_id.strip(), ttl_seconds))
    except ValueError as error:
        print(f"token: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
