"""`gotrue-lite token`: print a signed API key (anon, service_role, …) as a local Supabase stack does."""

from __future__ import annotations

import argparse
from datetime import timedelta

from . import clock
from .config import ConfigError, parse_duration

# Local Supabase stacks hand out keys that last ten years.
DEFAULT_LIFETIME = "87600h"


def _lifetime(text: str) -> timedelta:
    try:
        lifetime = timedelta(seconds=int(text)) if text.isdigit() else parse_duration(text)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"--exp: expected seconds or a duration such as 24h, got {text!r}") from exc
    if lifetime <= timedelta(0):
        raise ConfigError(f"--exp: the lifetime must be positive, got {text!r}")
    return lifetime


def _cmd_token(args: argparse.Namespace) -> int:
    from .app import build_keys
    from .cli import _load_settings, _with_signing_key

    lifetime = _lifetime(args.exp)
    if not args.role.strip():
        raise ConfigError("--role: must not be empty")
    settings = _with_signing_key(_load_settings(args))
    now = clock.unix()
    claims = {"iss": "supabase", "role": args.role, "iat": now, "exp": now + int(lifetime.total_seconds())}
    print(build_keys(settings).sign(claims))
    return 0


def add_token(subcommands, common: argparse.ArgumentParser) -> None:
    token = subcommands.add_parser(
        "token", parents=[common],
        help="print an API key JWT signed with the configured keys (e.g. --role anon or service_role)",
    )
    token.add_argument("--role", required=True, help="the JWT role claim: anon, service_role, …")
    token.add_argument("--exp", default=DEFAULT_LIFETIME, help=f"lifetime, seconds or a duration (default {DEFAULT_LIFETIME})")
    token.set_defaults(handler=_cmd_token)
