"""PKCE parameters on the calls that start an email or OAuth flow."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import validation
from ..store import flow_state as flow_store

_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True)
class Challenge:
    code_challenge: str
    method: str  # "s256" | "plain"


def parse(code_challenge: str | None, method: str | None) -> Challenge | None:
    """None for the implicit flow; a Challenge for PKCE; 400 for half or malformed parameters."""
    if not code_challenge and not method:
        return None
    if not code_challenge or not method:
        raise validation("PKCE flow requires code_challenge_method and code_challenge")
    if not 43 <= len(code_challenge) <= 128:
        raise validation("code challenge has to be between 43 and 128 characters")
    if not _CHALLENGE.fullmatch(code_challenge):
        raise validation("code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes")
    lowered = method.lower()
    if lowered not in ("s256", "plain"):
        raise validation("Invalid code_challenge_method")
    return Challenge(code_challenge, lowered)


async def callback_flow(ctx, flow_id: str) -> dict | None:
    """The flow_state row an OAuth callback's `state` names (None: no such flow), with
    `linking_target_missing` set when the user it would link to is gone."""
    return await flow_store.find_for_callback(ctx.db, flow_id)
