"""The rules of the domain, free of aiohttp: each function takes a Context and plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from ..config import Settings
    from ..hooks import Hooks
    from ..mail import Mailer
    from ..providers.oidc import OIDCCache
    from ..ratelimit import SendBudget, SignInGuard, UsedSteps
    from ..sms import Sms
    from .recent_users import RecentUsers
    from ..store import Database
    from ..tokens import KeySet


@dataclass(frozen=True)
class Context:
    """What every rule needs: settings, database, signing keys, and the mail it may send."""

    settings: "Settings"
    db: "Database"
    keys: "KeySet"
    mailer: "Mailer | None" = None
    email_budget: "SendBudget | None" = None
    signin_guard: "SignInGuard | None" = None  # per-account slowdown of password guessing
    recent_users: "RecentUsers | None" = None  # GET /user's answers, kept briefly
    http: "aiohttp.ClientSession | None" = None  # the one outgoing HTTP client (outbound.py)
    sms: "Sms | None" = None  # the SMS vendor or dev outbox
    sms_budget: "SendBudget | None" = None  # GOTRUE_RATE_LIMIT_SMS_SENT
    used_totp_steps: "UsedSteps | None" = None  # TOTP codes already accepted (used once)
    hooks: "Hooks | None" = None  # GOTRUE_HOOK_*: the auth hooks (see hook_points.py)
    oidc: "OIDCCache | None" = None  # OpenID issuers' discovery documents and key sets


@dataclass(frozen=True)
class Client:
    """Who is asking: recorded on sessions and audit entries."""

    ip: str | None = None
    user_agent: str | None = None
    aud: str = ""
