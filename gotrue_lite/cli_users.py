"""`gotrue-lite users list|create|delete|ban`: the admin API's user operations for operators."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from .cli import CommandError
from .errors import APIError

ACTOR_ROLE = "service_role"  # what the audit log records as the actor of these commands


async def _with_context(args: argparse.Namespace, work) -> Any:
    from .app import build_keys
    from .auth import Client, Context
    from .auth.admin import Actor
    from .cli import _load_settings, _open_migrated, _with_signing_key

    settings = _with_signing_key(_load_settings(args))
    db, _ = await _open_migrated(settings)
    try:
        ctx = Context(settings=settings, db=db, keys=build_keys(settings))
        return await work(ctx, Client(aud=settings.jwt.aud), Actor(user=None, role=ACTOR_ROLE))
    finally:
        await db.close()


async def _find(ctx, client, who: str):
    """A user by id, or by email when the argument has an @."""
    from .auth import admin
    from .store import users as user_store

    if "@" in who:
        user = await user_store.find_by_email(ctx.db, who.lower(), client.aud)
        if user is None:
            raise APIError(404, "user_not_found", f"No user with email {who}")
        return user
    return await admin.load_user(ctx, who)


def _print_user(user: dict[str, Any]) -> None:
    print(json.dumps(user, ensure_ascii=False))


def _cmd_list(args: argparse.Namespace) -> int:
    from .auth import admin

    async def work(ctx, client, _actor):
        return await admin.list_users(ctx, client.aud, needle=args.filter or "", descending=True, page=args.page,
                                      per_page=args.per_page)

    users, total = _run(args, work)
    if args.json:
        for user in users:
            _print_user(user)
    else:
        print(f"{'id':36}  {'email':32}  {'confirmed':9}  {'banned_until':27}  created_at")
        for user in users:
            print(f"{user['id']:36}  {user.get('email') or user.get('phone') or '-':32}  "
                  f"{'yes' if user.get('email_confirmed_at') or user.get('phone_confirmed_at') else 'no':9}  "
                  f"{user.get('banned_until') or '-':27}  {user.get('created_at')}")
    print(f"{len(users)} of {total} users (page {args.page})", file=sys.stderr)
    return 0


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise CommandError("--password-stdin: no password on standard input")
        return line
    if args.prompt_password:
        return getpass.getpass("Password: ")
    return None


def _cmd_create(args: argparse.Namespace) -> int:
    from .auth import admin

    if not args.email and not args.phone:
        raise CommandError("users create: give --email or --phone")
    attrs = admin.Attributes(email=args.email or "", phone=args.phone or "", password=_password(args),
                             email_confirm=args.confirm, phone_confirm=args.confirm, role=args.role or "",
                             user_metadata=_json_object(args.data, "--data"))

    async def work(ctx, client, actor):
        return await admin.create_user(ctx, client, actor, attrs)

    _print_user(_run(args, work))
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from .auth import admin

    async def work(ctx, client, actor):
        user = await _find(ctx, client, args.user)
        await admin.delete_user(ctx, actor, user, soft=args.soft)
        return user.id

    print(f"deleted {_run(args, work)}{' (soft)' if args.soft else ''}")
    return 0


def _cmd_ban(args: argparse.Namespace) -> int:
    from .auth import admin

    async def work(ctx, client, actor):
        user = await _find(ctx, client, args.user)
        return await admin.update_user(ctx, actor, user, admin.Attributes(ban_duration=args.duration))

    user = _run(args, work)
    print(f"{user['id']} banned until {user['banned_until']}" if user.get("banned_until") else f"{user['id']} not banned")
    return 0


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{option}: not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CommandError(f"{option}: must be a JSON object")
    return value


def _run(args: argparse.Namespace, work) -> Any:
    try:
        return asyncio.run(_with_context(args, work))
    except APIError as exc:
        # The same words the admin API would answer with, as one line.
        raise CommandError(f"{exc.error_code}: {exc.message}") from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_users(subcommands, common: argparse.ArgumentParser) -> None:
    users = subcommands.add_parser("users", help="list, create, delete or ban users in the configured database")
    actions = users.add_subparsers(title="actions", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="list users, newest first")
    listing.add_argument("--page", type=_positive, default=1)
    listing.add_argument("--per-page", type=_positive, default=50)
    listing.add_argument("--filter", help="substring of the email or full name")
    listing.add_argument("--json", action="store_true", help="one JSON user per line")
    listing.set_defaults(handler=_cmd_list)

    create = actions.add_parser("create", parents=[common], help="create a user (no mail is sent)")
    create.add_argument("--email")
    create.add_argument("--phone")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    secret.add_argument("--prompt-password", action="store_true", help="ask for the password")
    create.add_argument("--confirm", action="store_true", help="mark the email/phone confirmed")
    create.add_argument("--role", help="the user's JWT role (default: GOTRUE_JWT_DEFAULT_GROUP_NAME)")
    create.add_argument("--data", help="user_metadata as a JSON object")
    create.set_defaults(handler=_cmd_create)

    delete = actions.add_parser("delete", parents=[common], help="delete a user by id or email")
    delete.add_argument("user", help="user id or email")
    delete.add_argument("--soft", action="store_true", help="soft delete: keep an anonymised row")
    delete.set_defaults(handler=_cmd_delete)

    ban = actions.add_parser("ban", parents=[common], help="ban a user for a duration, or lift a ban with 'none'")
    ban.add_argument("user", help="user id or email")
    ban.add_argument("--duration", required=True, help="Go duration such as 24h or 876000h, or none")
    ban.set_defaults(handler=_cmd_ban)
