"""Settings: one frozen tree loaded from defaults, gotrue_lite.toml, ./.env and GOTRUE_* variables."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import logging
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

log = logging.getLogger("gotrue_lite.config")

CONFIG_FILE_NAME = "gotrue_lite.toml"
CONFIG_FILE_ENV = "GOTRUE_LITE_CONFIG"


class ConfigError(Exception):
    """A setting is invalid; the message is one line that starts with the setting's env name."""


# ---------------------------------------------------------------------------------------------
# The Settings tree. Attribute paths are the TOML paths (see CONFIG.md §1.3). Secrets are kept
# out of repr() so that logging a Settings object never leaks them.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """A send limit: `events` per `period`, in fixed windows or (bucket=True) as a token bucket."""

    events: float
    period: timedelta
    bucket: bool


@dataclass(frozen=True, slots=True)
class ApiSettings:
    host: str
    port: int
    external_url: str
    max_request_duration: timedelta
    request_id_header: str


@dataclass(frozen=True, slots=True)
class DbSettings:
    url: str = field(repr=False)  # may carry a Postgres password
    driver: str
    namespace: str
    max_pool_size: int
    cleanup_enabled: bool
    sqlite_path: str | None


@dataclass(frozen=True, slots=True)
class JwtSettings:
    secret: str | None = field(repr=False)
    exp: int
    aud: str
    default_group_name: str
    admin_roles: tuple[str, ...]
    admin_group_name: str
    issuer: str
    key_id: str
    keys: tuple[dict, ...] = field(repr=False)
    valid_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EmailProviderSettings:
    enabled: bool
    magic_link_enabled: bool
    authorized_addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PhoneProviderSettings:
    enabled: bool


@dataclass(frozen=True, slots=True)
class AnonymousUsersSettings:
    enabled: bool


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    enabled: bool
    client_id: tuple[str, ...]
    secret: str = field(repr=False)
    redirect_uri: str
    url: str
    api_url: str
    email_optional: bool
    skip_nonce_check: bool


@dataclass(frozen=True, slots=True)
class ExternalSettings:
    email: EmailProviderSettings
    phone: PhoneProviderSettings
    anonymous_users: AnonymousUsersSettings
    redirect_url: str
    flow_state_expiry_duration: timedelta
    providers: dict[str, ProviderSettings]
    # GOTRUE_EXPERIMENTAL_*: provider -> account-linking domain (models/linking.go)
    provider_linking_domains: dict[str, str]
    providers_with_own_linking_domain: tuple[str, ...]
    ios_bundle_id: str  # an extra accepted audience of Apple ID tokens
    allowed_id_token_issuers: tuple[str, ...]  # id_token grant with client_id + issuer
    oidc_provider_cache_ttl: timedelta  # discovery documents and key sets
    custom_oauth_enabled: bool  # GOTRUE_CUSTOM_OAUTH_*: the admin-made custom:<id> providers
    custom_oauth_max_providers: int  # 0: no limit
    custom_oauth_external_url: str  # the callback base for custom providers; "": API_EXTERNAL_URL


@dataclass(frozen=True, slots=True)
class MailerUrlPaths:
    invite: str
    confirmation: str
    recovery: str
    email_change: str


@dataclass(frozen=True, slots=True)
class MailerSettings:
    autoconfirm: bool
    allow_unverified_email_sign_ins: bool
    otp_exp: int
    otp_length: int
    secure_email_change_enabled: bool
    external_hosts: tuple[str, ...]
    urlpaths: MailerUrlPaths
    subjects: dict[str, str]
    templates: dict[str, str]
    notifications: dict[str, bool]
    template_max_size: int
    template_max_age: timedelta
    template_retry_interval: timedelta


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    admin_email: str
    sender_name: str
    headers: dict[str, tuple[str, ...]]
    max_frequency: timedelta
    logging_enabled: bool


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str
    auth_token: str = field(repr=False)
    message_service_sid: str  # the sender: a Messaging Service SID (MG…) or a phone number
    content_sid: str  # WhatsApp only: a Content API template taking the code as {{1}}


@dataclass(frozen=True, slots=True)
class TwilioVerifySettings:
    account_sid: str
    auth_token: str = field(repr=False)
    message_service_sid: str  # the Verify service SID (VA…)


@dataclass(frozen=True, slots=True)
class MessagebirdSettings:
    access_key: str = field(repr=False)
    originator: str


@dataclass(frozen=True, slots=True)
class TextlocalSettings:
    api_key: str = field(repr=False)
    sender: str


@dataclass(frozen=True, slots=True)
class VonageSettings:
    api_key: str
    api_secret: str = field(repr=False)
    sender: str  # GOTRUE_SMS_VONAGE_FROM ("from" is a Python keyword)


@dataclass(frozen=True, slots=True)
class SmsSettings:
    provider: str
    autoconfirm: bool
    otp_exp: int
    otp_length: int
    max_frequency: timedelta
    template: str
    test_otp: dict[str, str] = field(repr=False)
    test_otp_valid_until: datetime | None
    twilio: TwilioSettings
    twilio_verify: TwilioVerifySettings
    messagebird: MessagebirdSettings
    textlocal: TextlocalSettings
    vonage: VonageSettings


@dataclass(frozen=True, slots=True)
class PasswordSettings:
    min_length: int
    required_characters: tuple[str, ...]
    hibp_enabled: bool


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    refresh_token_rotation_enabled: bool
    refresh_token_reuse_interval: int
    refresh_token_algorithm_version: int
    update_password_require_reauthentication: bool
    update_password_require_current_password: bool
    manual_linking_enabled: bool
    sb_forwarded_for_enabled: bool
    captcha_enabled: bool
    captcha_provider: str
    captcha_secret: str = field(repr=False)
    captcha_timeout: timedelta
    # Column encryption (TOTP secrets, phone MFA codes), upstream's DatabaseEncryptionConfiguration
    db_encryption_encrypt: bool
    db_encryption_encryption_key_id: str
    db_encryption_encryption_key: str = field(repr=False)
    db_encryption_decryption_keys: dict[str, str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionsSettings:
    timebox: timedelta | None
    inactivity_timeout: timedelta | None
    allow_low_aal: timedelta | None
    single_per_user: bool
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    header: str
    email_sent: Rate
    sms_sent: Rate
    token_refresh: float
    verify: float
    otp: float
    anonymous_users: float
    sso: float
    web3: float


@dataclass(frozen=True, slots=True)
class MfaSettings:
    totp_enroll_enabled: bool
    totp_verify_enabled: bool
    phone_enroll_enabled: bool
    phone_verify_enabled: bool
    max_enrolled_factors: int
    max_verified_factors: int
    challenge_expiry_duration: int
    factor_expiry_duration: timedelta
    rate_limit_challenge_and_verify: float
    phone_otp_length: int
    phone_max_frequency: timedelta
    phone_template: str
    web_authn_enroll_enabled: bool
    web_authn_verify_enabled: bool


@dataclass(frozen=True, slots=True)
class WebAuthnSettings:
    rp_id: str
    rp_display_name: str
    rp_origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CorsSettings:
    allowed_headers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    enabled: bool
    exporter: str  # "opentelemetry" (OTLP push, needs the otel extra) or "prometheus"
    exporter_protocol: str  # OTLP's transport; gotrue-lite pushes http/protobuf only
    prometheus_host: str
    prometheus_port: int


@dataclass(frozen=True, slots=True)
class TracingSettings:
    enabled: bool
    exporter: str  # only "opentelemetry" exports anything, as upstream
    exporter_protocol: str
    service_name: str  # service.name when OTEL_SERVICE_NAME does not say


@dataclass(frozen=True, slots=True)
class HookSettings:
    enabled: bool
    uri: str
    secrets: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Netlify GoTrue's event webhooks (its conf.WebhookConfig), beside upstream's hooks."""

    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...]
    retries: int
    timeout_sec: int


@dataclass(frozen=True, slots=True)
class LiteSettings:
    captcha_verify_url: str  # replaces the captcha provider's siteverify URL; "": the provider's own
    dev_mailbox: bool  # default: on while there is no SMTP host and the API is on loopback
    rate_limit_peer_fallback: bool
    require_exp: bool  # refuse access tokens without exp (upstream accepts them)
    secret_file: str
    signin_failure_limit: int  # per-account slowdown after this many failed sign-ins; 0: off
    smtp_implicit_tls: bool | None  # None: implicit TLS exactly when smtp.port is 465
    smtp_tls_verify: bool  # False accepts any certificate (development relays only)
    verify_confirmation_page: bool  # GET /verify shows a button instead of spending the link
    user_cache_ttl: timedelta  # how old GET /user's answer may be for changes made by other processes; 0: off
    sms_api_url: str  # "": each SMS vendor's own origin; else this origin, with the vendor's path
    allow_insecure_provider_urls: bool  # custom providers may use loopback / private hosts (tests, local IdPs)
    extra_ca_file: str  # PEM CAs the outgoing HTTP client trusts beside the system's


@dataclass(frozen=True, slots=True)
class Settings:
    site_url: str
    uri_allow_list: tuple[str, ...]
    disable_signup: bool
    log_level: int
    log_file: str
    log_sql: str
    audit_log_disable_postgres: bool
    internal_http_timeout: timedelta  # SMS vendors (and OAuth providers): each call's total time
    api: ApiSettings
    db: DbSettings
    jwt: JwtSettings
    external: ExternalSettings
    mailer: MailerSettings
    smtp: SmtpSettings
    sms: SmsSettings
    password: PasswordSettings
    security: SecuritySettings
    sessions: SessionsSettings
    rate_limit: RateLimitSettings
    mfa: MfaSettings
    webauthn: WebAuthnSettings
    cors: CorsSettings
    metrics: MetricsSettings
    tracing: TracingSettings
    hooks: dict[str, HookSettings]
    webhook: WebhookSettings
    lite: LiteSettings
    config_file: str | None  # the TOML file that was read, if any


# ---------------------------------------------------------------------------------------------
# Parsers. Each takes a raw value — env text, or a native TOML value — and returns the typed
# value or raises _Invalid. Parsers marked @_textual treat "" as a real value; for all others an
# empty value means "not set here" (CONFIG.md §1 rule 4: Go would refuse to start instead).
# ---------------------------------------------------------------------------------------------


class _Invalid(ValueError):
    def __init__(self, message: str, *, show_value: bool = True):
        super().__init__(message)
        self.show_value = show_value


def _textual(parse):
    parse.textual = True
    return parse


def _takes_table(parse):
    # A TOML table under this key is the value itself (a map), not more settings to flatten.
    parse.takes_table = True
    return parse


def _text(raw: Any, expected: str) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return str(raw)  # a TOML number where env text is expected, e.g. a numeric password
    raise _Invalid(expected)


@_textual
def _str(raw: Any) -> str:
    return _text(raw, "expected a string")


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = _text(raw, "expected a boolean (true/false, 1/0, t/f)")
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid("expected a boolean (true/false, 1/0, t/f)")


def _int(raw: Any, expected: str = "expected an integer") -> int:
    if isinstance(raw, bool):
        raise _Invalid(expected)
    if isinstance(raw, int):
        return raw
    text = _text(raw, expected).strip()
    try:
        return int(text, 0)
    except ValueError:
        pass
    # Go's base-0 ParseInt reads a leading 0 as octal ("010" = 8); Python's int(…, 0) refuses.
    if re.fullmatch(r"[+-]?0[0-7_]+", text):
        return int(text, 8)
    raise _Invalid(expected)


def _int_range(low: int, high: int, expected: str | None = None):
    expected = expected or f"expected an integer from {low} to {high}"

    def parse(raw: Any) -> int:
        value = _int(raw, expected)
        if not low <= value <= high:
            raise _Invalid(expected)
        return value

    return parse


_port = _int_range(0, 65535, "expected a port number (0-65535)")


def _float(raw: Any) -> float:
    expected = "expected a number"
    if isinstance(raw, bool):
        raise _Invalid(expected)
    try:
        value = float(_text(raw, expected))
    except ValueError:
        raise _Invalid(expected) from None
    if math.isnan(value) or value < 0:
        raise _Invalid("expected a non-negative number")
    return value


_UNIT_NS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_MAX_DURATION_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
_DURATION_EXPECTED = "expected a Go duration such as 300ms, 1m30s or 1.5h"


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration string (time.ParseDuration syntax) into a timedelta."""
    rest, sign = text, 1
    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return timedelta(0)
    if not rest:
        raise _Invalid(_DURATION_EXPECTED)
    total, pos = Fraction(0), 0
    while pos < len(rest):
        part = _DURATION_PART.match(rest, pos)
        if part is None:
            raise _Invalid(_DURATION_EXPECTED)
        total += Fraction(part[1]) * _UNIT_NS[part[2]]
        pos = part.end()
    if total > _MAX_DURATION_NS:
        raise _Invalid("duration out of range")
    return sign * timedelta(microseconds=round(total / 1000))


def _duration(raw: Any) -> timedelta:
    return parse_duration(_text(raw, _DURATION_EXPECTED).strip())


def _positive_duration(raw: Any) -> timedelta:
    value = _duration(raw)
    if value <= timedelta(0):
        raise _Invalid("must be a duration greater than 0 (leave it unset to disable)")
    return value


_GO_INT_SECONDS = (
    "expected a whole number of seconds, such as 3600 (read as Go reads an int: "
    "no units, so 1h or 60m are refused)"
)


def _go_int_seconds(raw: Any) -> int:
    # GOTRUE_JWT_EXP is a Go int filled by envconfig (strconv.ParseInt, base 0, 64 bits):
    # 3600, 0x0e10 or 07020 are read, a duration such as "1h" is a start-up error there too.
    value = _int(raw, _GO_INT_SECONDS)
    if not -(2**63) <= value < 2**63:
        raise _Invalid(_GO_INT_SECONDS)
    return value


def _seconds(raw: Any) -> int:
    # Go reads these as integers of seconds; a duration string is accepted as a convenience.
    expected = "expected an integer number of seconds"
    try:
        value = _int(raw, expected)
    except _Invalid:
        try:
            span = _duration(raw)
        except _Invalid:
            raise _Invalid(expected) from None
        if span % timedelta(seconds=1):
            raise _Invalid(expected) from None
        value = span // timedelta(seconds=1)
    if value < 0:
        raise _Invalid("expected a non-negative integer number of seconds")
    return value


def _list(separator: str = ","):
    @_textual
    def parse(raw: Any) -> tuple[str, ...]:
        if isinstance(raw, (list, tuple)):
            items = [_text(item, "expected a list of strings") for item in raw]
        else:
            items = _text(raw, "expected a comma-separated list").split(separator)
        # Go keeps the spaces around items; stripping them and dropping blanks is harmless.
        return tuple(item.strip() for item in items if item.strip())

    return parse


_MAP_EXPECTED = "expected key:value pairs separated by commas"


@_textual
@_takes_table
def _linking_domains(raw: Any) -> dict[str, str]:
    """GOTRUE_EXPERIMENTAL_PROVIDER_LINKING_DOMAINS: `provider=domain` pairs (a provider name may
    hold a colon: custom:github=social)."""
    if isinstance(raw, dict):
        pairs = [(str(key), _text(value, "expected provider=domain pairs")) for key, value in raw.items()]
    else:
        pairs = []
        for item in _text(raw, "expected provider=domain pairs separated by commas").split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise _Invalid(f'invalid provider linking domain "{item}", expected format "provider=domain"')
            pairs.append(tuple(item.split("=", 1)))
    result = {}
    for provider, domain in pairs:
        if not provider.strip() or not domain.strip():
            raise _Invalid(f'invalid provider linking domain "{provider}={domain}", provider and domain must be non-empty')
        result[provider.strip()] = domain.strip()
    return result


@_textual
@_takes_table
def _map(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        pairs = [(str(key), _text(value, _MAP_EXPECTED)) for key, value in raw.items()]
    else:
        pairs = []
        for item in _text(raw, _MAP_EXPECTED).split(","):
            if not item.strip():
                continue
            parts = item.split(":")
            if len(parts) != 2:
                raise _Invalid(_MAP_EXPECTED + " (neither key nor value may contain ':')")
            pairs.append((parts[0], parts[1]))
    result = {}
    for key, value in pairs:
        if not key.strip():
            raise _Invalid(_MAP_EXPECTED + " (empty key)")
        result[key.strip()] = value.strip()
    return result


@_textual
@_takes_table
def _test_otp(raw: Any) -> dict[str, str]:
    # Keys are compared with normalised phone numbers (API.md §1.6), so normalise them alike.
    return {key.replace(" ", "").removeprefix("+"): code for key, code in _map(raw).items()}


def _rate(raw: Any) -> Rate:
    expected = "expected a number of events per hour (e.g. 30) or N/<duration> (e.g. 10/1h)"
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(raw)
    text = _text(raw, expected).strip()
    amount, slash, period_text = text.partition("/")
    try:
        events = float(amount)
    except ValueError:
        raise _Invalid(expected) from None
    if math.isnan(events) or events < 0:
        raise _Invalid(expected)
    if not slash:
        return Rate(events, timedelta(hours=1), False)
    period = parse_duration(period_text.strip())
    if period <= timedelta(0):
        raise _Invalid("the period after '/' must be greater than 0")
    return Rate(events, period, True)


_LOG_LEVELS = {
    "panic": logging.CRITICAL, "fatal": logging.CRITICAL, "error": logging.ERROR,
    "warn": logging.WARNING, "warning": logging.WARNING, "info": logging.INFO,
    "debug": logging.DEBUG, "trace": logging.DEBUG,
}


def _log_level(raw: Any) -> int:
    expected = "expected one of panic, fatal, error, warn, info, debug, trace"
    level = _LOG_LEVELS.get(_text(raw, expected).strip().lower())
    if level is None:
        raise _Invalid(expected)
    return level


def _choice(*options: str):
    expected = "expected one of " + ", ".join(options)

    def parse(raw: Any) -> str:
        value = _text(raw, expected).strip().lower()
        if value not in options:
            raise _Invalid(expected)
        return value

    return parse


def _url(schemes: Iterable[str] | None = None):
    schemes = tuple(schemes) if schemes else None
    expected = (
        "expected an absolute " + "/".join(schemes) + " URL" if schemes else "expected an absolute URL"
    )

    @_textual
    def parse(raw: Any) -> str:
        value = _text(raw, expected)
        try:
            parts = urlsplit(value)
        except ValueError:
            raise _Invalid(expected) from None
        if not parts.scheme or not parts.netloc or (schemes and parts.scheme not in schemes):
            raise _Invalid(expected)
        return value

    return parse


@_textual
def _webhook_url(raw: Any) -> str:
    # netlify resolves a URL without scheme and host against GOTRUE_SITE_URL.
    expected = "expected an absolute http/https URL or a path such as /.netlify/functions/identity"
    value = _text(raw, expected).strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _Invalid(expected) from None
    if value and not (parts.scheme in ("http", "https") and parts.netloc) and not (
            not parts.scheme and not parts.netloc and value.startswith("/")):
        raise _Invalid(expected)
    return value


def _timestamp(raw: Any) -> datetime:
    expected = "expected an RFC 3339 timestamp such as 2030-01-01T00:00:00Z"
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(_text(raw, expected).strip())
        except ValueError:
            raise _Invalid(expected) from None
    if value.tzinfo is None:
        raise _Invalid(expected + " (a time zone offset is required)")
    return value


@_textual
def _char_sets(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        sets = [_text(item, "expected a list of character sets") for item in raw]
    else:
        # Sets are separated by ':'; '\:' stands for a literal colon inside a set.
        text = _text(raw, "expected character sets separated by ':'")
        sets = [part.replace("\\:", ":") for part in re.split(r"(?<!\\):", text)]
    return tuple(s for s in sets if s)


@_textual
@_takes_table
def _smtp_headers(raw: Any) -> dict[str, tuple[str, ...]]:
    # Go ignores an invalid GOTRUE_SMTP_HEADERS with a warning rather than refusing to start.
    if isinstance(raw, str) and not raw.strip():
        return {}
    try:
        document = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        document = None
    if isinstance(document, dict) and all(
        isinstance(values, list) and all(isinstance(v, str) for v in values)
        for values in document.values()
    ):
        return {str(name): tuple(values) for name, values in document.items()}
    log.warning("GOTRUE_SMTP_HEADERS: expected a JSON object of header name -> list of strings; ignored")
    return {}


# JWT_KEYS: which algorithms gotrue-lite signs and verifies with, and the key type each needs.
_ALG_KTY = {
    "RS256": "RSA", "RS512": "RSA", "ES256": "EC", "ES512": "EC", "EdDSA": "OKP", "HS256": "oct",
}
_ALG_CURVE = {"ES256": "P-256", "ES512": "P-521", "EdDSA": "Ed25519"}


def _key_alg(key: dict) -> str:
    # Go signs with HS256 when an oct key names no algorithm.
    return key.get("alg") or "HS256"


def _b64url(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_ed25519(key: dict) -> None:
    # python-jose has no EdDSA support, so check the key with `cryptography` directly.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = _b64url(key.get("x"))
    Ed25519PublicKey.from_public_bytes(public)
    if "d" in key:
        derived = Ed25519PrivateKey.from_private_bytes(_b64url(key["d"])).public_key()
        if derived.public_bytes(Encoding.Raw, PublicFormat.Raw) != public:
            raise ValueError("'d' does not match 'x'")


def _check_jwk(key: Any, where: str) -> dict:
    if not isinstance(key, dict):
        raise _Invalid(f"{where} is not a JSON object", show_value=False)
    kty = key.get("kty")
    if not isinstance(kty, str) or not kty:
        raise _Invalid(f"{where} has no 'kty'", show_value=False)
    if kty not in _ALG_KTY.values():
        raise _Invalid(f"{where} has unsupported kty {kty!r}", show_value=False)
    alg = key.get("alg")
    if kty != "oct":
        for member in ("alg", "kid"):
            if not isinstance(key.get(member), str) or not key.get(member):
                raise _Invalid(f"{where} ({kty}) must carry '{member}'", show_value=False)
    if alg is not None and alg not in _ALG_KTY:
        raise _Invalid(
            f"{where} has unsupported alg {alg!r} (supported: {', '.join(_ALG_KTY)})",
            show_value=False,
        )
    alg = _key_alg(key)
    if _ALG_KTY[alg] != kty:
        raise _Invalid(f"{where}: alg {alg} needs kty {_ALG_KTY[alg]}, not {kty}", show_value=False)
    if alg in _ALG_CURVE and key.get("crv") != _ALG_CURVE[alg]:
        raise _Invalid(f"{where}: alg {alg} needs crv {_ALG_CURVE[alg]}", show_value=False)
    ops = key.get("key_ops", [])
    if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
        raise _Invalid(f"{where}: 'key_ops' must be a list of strings", show_value=False)
    try:
        if alg == "EdDSA":
            _check_ed25519(key)
        else:
            from jose import jwk

            jwk.construct(key, alg)
    except Exception as error:  # jose and cryptography raise many types for a bad key
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        # A library message may quote part of the key; never let key material into the log.
        if any(isinstance(v, str) and len(v) > 8 and v in reason for v in key.values()):
            reason = type(error).__name__
        raise _Invalid(f"{where} does not load as a {alg} key: {reason}", show_value=False) from None
    return dict(key)


def _jwks(raw: Any) -> tuple[dict, ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:
            raise _Invalid(f"invalid JSON ({error})", show_value=False) from None
    if not isinstance(raw, list):
        raise _Invalid("expected a JSON array of JWKs", show_value=False)
    keys = tuple(_check_jwk(key, f"key {number}") for number, key in enumerate(raw, 1))
    if not keys:
        return keys
    signing = [key for key in keys if "sign" in key.get("key_ops", [])]
    if len(signing) != 1:
        found = "no key has" if not signing else f"{len(signing)} keys have"
        raise _Invalid(
            f"exactly one key must have \"sign\" in key_ops, {found} it", show_value=False
        )
    if _ALG_KTY[_key_alg(signing[0])] != "oct" and "d" not in signing[0]:
        raise _Invalid("the signing key has no private part ('d')", show_value=False)
    kids = [key["kid"] for key in keys if key.get("kid")]
    if len(kids) != len(set(kids)):
        raise _Invalid("two keys share the same 'kid'", show_value=False)
    return keys


# ---------------------------------------------------------------------------------------------
# Silent clamps, applied after parsing exactly as Go's ApplyDefaults does.
# ---------------------------------------------------------------------------------------------


def _zero_to(replacement):
    return lambda value: replacement if not value else value


def _at_least(minimum):
    return lambda value: max(value, minimum)


def _within(low, high, fallback):
    return lambda value: value if low <= value <= high else fallback


# ---------------------------------------------------------------------------------------------
# The table: one row per setting.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Derived:
    """A default computed from settings resolved earlier in the table."""

    compute: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class _Setting:
    path: str  # attribute path in Settings; also its TOML path
    parse: Callable[[Any], Any]
    default: Any
    env: tuple[str, ...]  # env spellings in lookup order (Go's own first, then aliases)
    label: str  # the name used in messages
    fix: Callable[[Any], Any] | None = None
    secret: bool = False
    blank_unset: bool = True

    @property
    def toml_names(self) -> tuple[str, ...]:
        # The file also accepts the name flattened from the attribute path, so that e.g.
        # `[external] redirect_url` and `[smtp] password` work beside their Go spellings.
        return tuple(dict.fromkeys(self.env + (_flat_name(self.path),)))


def _flat_name(dotted: str) -> str:
    return "GOTRUE_" + dotted.replace(".", "_").upper()


def _S(path, parse, default, *env, label=None, fix=None, secret=False, blank_unset=None):
    env = env or (_flat_name(path),)
    if blank_unset is None:
        blank_unset = not getattr(parse, "textual", False)
    return _Setting(path, parse, default, env, label or env[0], fix, secret, blank_unset)


_MINUTE = timedelta(minutes=1)

_PROVIDERS = (
    "apple azure bitbucket discord facebook figma fly github gitlab google kakao keycloak "
    "linkedin linkedin_oidc notion slack slack_oidc snapchat spotify twitch twitter "
    "vercel_marketplace workos x zoom"
).split()

_MAIL_TYPES = (
    "invite confirmation recovery magic_link email_change reauthentication "
    "password_changed_notification email_changed_notification phone_changed_notification "
    "identity_linked_notification identity_unlinked_notification "
    "mfa_factor_enrolled_notification mfa_factor_unenrolled_notification"
).split()

_NOTIFICATIONS = (
    "password_changed email_changed phone_changed identity_linked identity_unlinked "
    "mfa_factor_enrolled mfa_factor_unenrolled"
).split()

_HOOKS = (
    "custom_access_token send_email send_sms mfa_verification_attempt "
    "password_verification_attempt before_user_created after_user_created"
).split()


def _default_valid_methods(values: dict[str, Any]) -> tuple[str, ...]:
    keys = values["jwt.keys"]
    return tuple(dict.fromkeys(_key_alg(key) for key in keys)) if keys else ("HS256",)


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
WELCOME_PATH = "/_dev/welcome"  # the built-in landing page (api/devwelcome.py)


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listening_url(values: dict[str, Any]) -> str:
    # Links in mail must reach this server: its own port, and its own address when it listens
    # on one particular non-local address (localhost for loopback and every-interface).
    host = values["api.host"].strip()
    if host in _WILDCARD_HOSTS or is_loopback(host):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{values['api.port']}"


def _dev_mailbox_default(values: dict[str, Any]) -> bool:
    # Mail holds sign-in links: kept and shown only while nothing is sent out and the API is
    # not reachable from the network.
    return not values["smtp.host"] and is_loopback(values["api.host"])


def dev_welcome_url(external_url: str) -> str:
    return external_url.rstrip("/") + WELCOME_PATH


def _site_url_default(values: dict[str, Any]) -> str:
    if values["lite.dev_mailbox"]:
        return dev_welcome_url(values["api.external_url"])
    return "http://localhost:3000"


def _declare() -> list[_Setting]:
    rows = [
        _S("uri_allow_list", _list(), ()),
        _S("disable_signup", _bool, False),
        _S("log_level", _log_level, logging.INFO, "GOTRUE_LOG_LEVEL", "LOG_LEVEL"),
        _S("log_file", _str, "", "GOTRUE_LOG_FILE", "LOG_FILE"),  # upstream's README says LOG_FILE
        _S("log_sql", _str, ""),
        _S("audit_log_disable_postgres", _bool, False),
        # Go reads it once at start; 0 keeps the 10 s default, as there.
        _S("internal_http_timeout", _duration, timedelta(seconds=10),
           fix=lambda v: v if v > timedelta(0) else timedelta(seconds=10)),
        # api — Go reads the prefixed spelling first, then the bare one (envconfig's alt name).
        _S("api.host", _str, "127.0.0.1"),  # Go listens on all interfaces; lite stays local
        _S("api.port", _port, 9999, "GOTRUE_API_PORT", "PORT", label="PORT"),
        _S("api.external_url", _url(("http", "https")), _Derived(_listening_url),
           "GOTRUE_API_API_EXTERNAL_URL", "API_EXTERNAL_URL", "GOTRUE_API_EXTERNAL_URL",
           label="API_EXTERNAL_URL", blank_unset=True),
        _S("api.max_request_duration", _duration, timedelta(seconds=10)),
        _S("api.request_id_header", _str, "",
           "GOTRUE_API_REQUEST_ID_HEADER", "REQUEST_ID_HEADER", label="REQUEST_ID_HEADER"),
        # db — the driver and sqlite_path are worked out from the URL in _finish().
        _S("db.url", _str, "sqlite:///gotrue_lite.db",
           "GOTRUE_DB_DATABASE_URL", "DATABASE_URL", "GOTRUE_DB_URL",
           label="DATABASE_URL", secret=True, blank_unset=True),
        _S("db.driver", _choice("sqlite", "postgres"), None),
        _S("db.namespace", _str, "auth",
           "GOTRUE_DB_DB_NAMESPACE", "DB_NAMESPACE", "GOTRUE_DB_NAMESPACE",
           label="DB_NAMESPACE", blank_unset=True),
        _S("db.max_pool_size", _int_range(0, 2**31 - 1, "expected a non-negative integer"), 0),
        _S("db.cleanup_enabled", _bool, False),
        # jwt — an empty secret counts as none, so the CLI's development secret applies.
        _S("jwt.secret", _str, None, secret=True, blank_unset=True),
        _S("jwt.exp", _go_int_seconds, 3600, fix=_zero_to(3600)),
        _S("jwt.aud", _str, "authenticated"),
        _S("jwt.default_group_name", _str, "authenticated"),
        _S("jwt.admin_roles", _list(), ("service_role", "supabase_admin")),
        _S("jwt.admin_group_name", _str, "admin"),
        # No default, as upstream: access tokens carry iss only when GOTRUE_JWT_ISSUER is set.
        _S("jwt.issuer", _str, ""),
        _S("jwt.key_id", _str, ""),
        _S("jwt.keys", _jwks, (), secret=True),
        # An empty list would reject every token; treat it as unset instead.
        _S("jwt.valid_methods", _list(), _Derived(_default_valid_methods), blank_unset=True),
        # external
        _S("external.email.enabled", _bool, True),
        _S("external.email.magic_link_enabled", _bool, True),
        _S("external.email.authorized_addresses", _list(), ()),
        _S("external.phone.enabled", _bool, False),
        _S("external.anonymous_users.enabled", _bool, False),
        _S("external.redirect_url", _str, "", "GOTRUE_EXTERNAL_REDIRECTURL"),
        _S("external.provider_linking_domains", _linking_domains, {}, "GOTRUE_EXPERIMENTAL_PROVIDER_LINKING_DOMAINS"),
        _S("external.providers_with_own_linking_domain", _list(), (),
           "GOTRUE_EXPERIMENTAL_PROVIDERS_WITH_OWN_LINKING_DOMAIN"),
        _S("external.flow_state_expiry_duration", _duration, timedelta(seconds=300),
           fix=_at_least(timedelta(seconds=300))),
        _S("external.ios_bundle_id", _str, "", "GOTRUE_EXTERNAL_IOS_BUNDLE_ID"),
        _S("external.allowed_id_token_issuers", _list(), ("https://appleid.apple.com", "https://accounts.google.com"),
           "GOTRUE_EXTERNAL_ALLOWED_ID_TOKEN_ISSUERS"),
        _S("external.oidc_provider_cache_ttl", _duration, timedelta(hours=1), "GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL"),
        _S("external.custom_oauth_enabled", _bool, True, "GOTRUE_CUSTOM_OAUTH_ENABLED"),
        _S("external.custom_oauth_max_providers", _int, 0, "GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS", fix=_at_least(0)),
        _S("external.custom_oauth_external_url", _str, "", "GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL"),
        # mailer
        _S("mailer.allow_unverified_email_sign_ins", _bool, False),
        _S("mailer.otp_exp", _seconds, 86400, fix=_zero_to(86400)),
        _S("mailer.otp_length", _int, 6, fix=_within(6, 10, 6)),
        _S("mailer.secure_email_change_enabled", _bool, True),
        _S("mailer.external_hosts", _list(), ()),
        _S("mailer.urlpaths.invite", _str, "/verify"),
        _S("mailer.urlpaths.confirmation", _str, "/verify"),
        _S("mailer.urlpaths.recovery", _str, "/verify"),
        _S("mailer.urlpaths.email_change", _str, "/verify"),
        _S("mailer.template_max_size", _int, 1_000_000),
        _S("mailer.template_max_age", _duration, timedelta(minutes=10)),
        _S("mailer.template_retry_interval", _duration, timedelta(seconds=10)),
        # smtp
        _S("smtp.host", _str, ""),
        _S("smtp.port", _port, 587),
        _S("smtp.user", _str, ""),
        _S("smtp.password", _str, "", "GOTRUE_SMTP_PASS", secret=True),
        _S("smtp.admin_email", _str, ""),
        _S("smtp.sender_name", _str, ""),
        _S("smtp.headers", _smtp_headers, {}),
        _S("smtp.max_frequency", _duration, _MINUTE, fix=lambda v: v if v > timedelta(0) else _MINUTE),
        _S("smtp.logging_enabled", _bool, False),
        # sms
        _S("sms.provider", _str, ""),
        _S("sms.autoconfirm", _bool, False),
        _S("sms.otp_exp", _seconds, 60, fix=_zero_to(60)),
        _S("sms.otp_length", _int, 6, fix=_within(6, 10, 6)),
        _S("sms.max_frequency", _duration, _MINUTE, fix=lambda v: v if v > timedelta(0) else _MINUTE),
        _S("sms.template", _str, "Your code is {{ .Code }}"),
        _S("sms.test_otp", _test_otp, {}, secret=True),
        _S("sms.test_otp_valid_until", _timestamp, None),
        # The vendors' credentials, checked when a message is sent (incomplete: no provider).
        _S("sms.twilio.account_sid", _str, ""),
        _S("sms.twilio.auth_token", _str, "", secret=True),
        _S("sms.twilio.message_service_sid", _str, ""),
        _S("sms.twilio.content_sid", _str, ""),
        _S("sms.twilio_verify.account_sid", _str, ""),
        _S("sms.twilio_verify.auth_token", _str, "", secret=True),
        _S("sms.twilio_verify.message_service_sid", _str, ""),
        _S("sms.messagebird.access_key", _str, "", secret=True),
        _S("sms.messagebird.originator", _str, ""),
        _S("sms.textlocal.api_key", _str, "", secret=True),
        _S("sms.textlocal.sender", _str, ""),
        _S("sms.vonage.api_key", _str, ""),
        _S("sms.vonage.api_secret", _str, "", secret=True),
        _S("sms.vonage.sender", _str, "", "GOTRUE_SMS_VONAGE_FROM"),
        # password
        _S("password.min_length", _int, 6, fix=_at_least(6)),
        _S("password.required_characters", _char_sets, ()),
        _S("password.hibp_enabled", _bool, False),
        # security
        _S("security.refresh_token_rotation_enabled", _bool, True),
        _S("security.refresh_token_reuse_interval", _seconds, 0),
        _S("security.refresh_token_algorithm_version", _int_range(0, 2), 0),
        _S("security.update_password_require_reauthentication", _bool, False),
        _S("security.update_password_require_current_password", _bool, False),
        _S("security.manual_linking_enabled", _bool, False),
        _S("security.sb_forwarded_for_enabled", _bool, False),
        _S("security.captcha_enabled", _bool, False),
        _S("security.captcha_provider", _choice("hcaptcha", "turnstile"), "hcaptcha"),
        _S("security.captcha_secret", _str, "", secret=True, fix=str.strip),
        # Upstream's verifier gives a zero timeout 10 s (a negative one means none, as in Go).
        _S("security.captcha_timeout", _duration, timedelta(seconds=10), fix=_zero_to(timedelta(seconds=10))),
        _S("security.db_encryption_encrypt", _bool, False),
        _S("security.db_encryption_encryption_key_id", _str, ""),
        _S("security.db_encryption_encryption_key", _str, "", secret=True),
        _S("security.db_encryption_decryption_keys", _map, {}, secret=True),
        # sessions — None means "no limit"; 0 is refused, as in Go.
        _S("sessions.timebox", _positive_duration, None),
        _S("sessions.inactivity_timeout", _positive_duration, None),
        _S("sessions.allow_low_aal", _positive_duration, None),
        _S("sessions.single_per_user", _bool, False),
        _S("sessions.tags", _list(), ()),
        # rate limits
        _S("rate_limit.header", _str, ""),
        _S("rate_limit.email_sent", _rate, Rate(30.0, timedelta(hours=1), False)),
        _S("rate_limit.sms_sent", _rate, Rate(30.0, timedelta(hours=1), False)),
        _S("rate_limit.token_refresh", _float, 150.0),
        _S("rate_limit.verify", _float, 30.0),
        _S("rate_limit.otp", _float, 30.0),
        _S("rate_limit.anonymous_users", _float, 30.0),
        _S("rate_limit.sso", _float, 30.0),
        _S("rate_limit.web3", _float, 30.0),
        # mfa
        _S("mfa.totp_enroll_enabled", _bool, True),
        _S("mfa.totp_verify_enabled", _bool, True),
        _S("mfa.phone_enroll_enabled", _bool, False),
        _S("mfa.phone_verify_enabled", _bool, False),
        _S("mfa.max_enrolled_factors", _int, 10),
        _S("mfa.max_verified_factors", _int, 10),
        _S("mfa.challenge_expiry_duration", _seconds, 300, fix=_at_least(300)),
        _S("mfa.factor_expiry_duration", _duration, timedelta(seconds=300),
           fix=_at_least(timedelta(seconds=300))),
        _S("mfa.rate_limit_challenge_and_verify", _float, 15.0),
        _S("mfa.phone_otp_length", _int, 6, fix=_within(6, 10, 6)),
        _S("mfa.phone_max_frequency", _duration, _MINUTE, fix=lambda v: v if v > timedelta(0) else _MINUTE),
        _S("mfa.phone_template", _str, "Your code is {{ .Code }}"),
        _S("mfa.web_authn_enroll_enabled", _bool, False),
        _S("mfa.web_authn_verify_enabled", _bool, False),
        _S("webauthn.rp_id", _str, ""),
        _S("webauthn.rp_display_name", _str, ""),
        _S("webauthn.rp_origins", _list(), ()),
        _S("cors.allowed_headers", _list(), ()),
        # Observability (upstream conf/metrics.go, conf/tracing.go): the OTEL_* fields carry an
        # envconfig tag, so the prefixed spelling is read first, then the bare standard name.
        # The exporters are free text as there: an unknown one switches nothing on.
        _S("metrics.enabled", _bool, False),
        _S("metrics.exporter", _str, "opentelemetry"),
        _S("metrics.exporter_protocol", _str, "http/protobuf",
           "GOTRUE_METRICS_OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        _S("metrics.prometheus_host", _str, "0.0.0.0",
           "GOTRUE_METRICS_OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_HOST",
           label="OTEL_EXPORTER_PROMETHEUS_HOST"),
        _S("metrics.prometheus_port", _port, 9100,
           "GOTRUE_METRICS_OTEL_EXPORTER_PROMETHEUS_PORT", "OTEL_EXPORTER_PROMETHEUS_PORT",
           label="OTEL_EXPORTER_PROMETHEUS_PORT"),
        _S("tracing.enabled", _bool, False),
        _S("tracing.exporter", _str, "opentelemetry"),
        _S("tracing.exporter_protocol", _str, "http/protobuf",
           "GOTRUE_TRACING_OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        _S("tracing.service_name", _str, "gotrue"),
        # Netlify's webhooks: it sends no event that is not listed, tries 3 times when retries
        # is 0 and waits 5 s when the timeout is not positive (api/hooks.go).
        _S("webhook.url", _webhook_url, ""),
        _S("webhook.secret", _str, "", secret=True),
        _S("webhook.events", _list(), ()),
        _S("webhook.retries", _int, 3, fix=lambda v: v if v > 0 else 3),
        _S("webhook.timeout_sec", _int, 5, fix=lambda v: v if v > 0 else 5),
        # lite — gotrue-lite's own settings, never under a name upstream could take.
        _S("lite.captcha_verify_url", _url(("http", "https")), "", blank_unset=True),  # "": the provider's
        _S("lite.dev_mailbox", _bool, _Derived(_dev_mailbox_default)),
        _S("lite.rate_limit_peer_fallback", _bool, False),
        _S("lite.require_exp", _bool, False),
        _S("lite.secret_file", _str, ""),
        _S("lite.signin_failure_limit", _int, 10, fix=_at_least(0)),
        _S("lite.smtp_implicit_tls", _bool, None),
        _S("lite.smtp_tls_verify", _bool, True),
        _S("lite.verify_confirmation_page", _bool, False),
        _S("lite.user_cache_ttl", _duration, timedelta(seconds=1), fix=_at_least(timedelta(0))),
        _S("lite.sms_api_url", _url(("http", "https")), ""),
        _S("lite.allow_insecure_provider_urls", _bool, False),
        _S("lite.extra_ca_file", _str, ""),
        # Defaults that follow the development mailbox, so they come after it: local development
        # behaves like the Supabase CLI's stack (no confirmation mails to wait for, a page to
        # land on after a link); an SMTP host or a public address keeps upstream's defaults.
        _S("site_url", _url(), _Derived(_site_url_default)),
        _S("mailer.autoconfirm", _bool, _Derived(
            lambda v: v["lite.dev_mailbox"] and not v["mailer.allow_unverified_email_sign_ins"])),
    ]
    for kind in _MAIL_TYPES:
        rows.append(_S(f"mailer.subjects.{kind}", _str, ""))
        rows.append(_S(f"mailer.templates.{kind}", _str, ""))
    for notice in _NOTIFICATIONS:
        rows.append(_S(f"mailer.notifications.{notice}", _bool, False,
                       f"GOTRUE_MAILER_NOTIFICATIONS_{notice.upper()}_ENABLED"))
    for name in _PROVIDERS:
        env = f"GOTRUE_EXTERNAL_{name.upper()}_"
        path = f"external.providers.{name}."
        rows += [
            _S(path + "enabled", _bool, False, env + "ENABLED"),
            _S(path + "client_id", _list(), (), env + "CLIENT_ID"),
            _S(path + "secret", _str, "", env + "SECRET", secret=True),
            _S(path + "redirect_uri", _str, "", env + "REDIRECT_URI"),
            _S(path + "url", _str, "", env + "URL"),
            _S(path + "api_url", _str, "", env + "API_URL"),
            _S(path + "email_optional", _bool, False, env + "EMAIL_OPTIONAL"),
            _S(path + "skip_nonce_check", _bool, False, env + "SKIP_NONCE_CHECK"),
        ]
    for name in _HOOKS:
        # Go falls back to a bare SECRETS for every hook; that name is too generic to read.
        env = f"GOTRUE_HOOK_{name.upper()}_"
        path = f"hooks.{name}."
        rows += [
            _S(path + "enabled", _bool, False, env + "ENABLED"),
            _S(path + "uri", _str, "", env + "URI"),
            _S(path + "secrets", _list("|"), (), env + "SECRETS", secret=True),
        ]
    return rows


_SETTINGS = _declare()
_KNOWN_ENV = frozenset(name for s in _SETTINGS for name in s.env) | {CONFIG_FILE_ENV}
_KNOWN_TOML = frozenset(name for s in _SETTINGS for name in s.toml_names)
_TABLE_VALUED_TOML = frozenset(
    name for s in _SETTINGS if getattr(s.parse, "takes_table", False) for name in s.toml_names
)


# ---------------------------------------------------------------------------------------------
# What gotrue-lite does not do yet. These settings are read and checked, so an existing env
# file loads unchanged, but they change nothing; the endpoints of a missing feature answer as
# upstream does with the feature switched off. `serve` warns once for each setting below that is
# set to switch its feature on. docs/configuration.md is tested against this table: when a
# feature lands, delete its row here and flip its rows there.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingFeature:
    feature: str  # as the start-up warning names it
    settings: tuple[str, ...]  # env names; one ending in "_" covers every name that starts with it
    switches: tuple[str, ...] = ()  # those of `settings` (same matching) that switch the feature on


_PENDING_NOTIFICATIONS = tuple(n for n in _NOTIFICATIONS if not n.startswith("mfa_factor_"))


NOT_YET: tuple[MissingFeature, ...] = (
    # The MFA factor enrolled / unenrolled notifications are sent (auth/mfa.py); the others not yet.
    MissingFeature("security notification mails",
                   (*(f"GOTRUE_MAILER_NOTIFICATIONS_{kind.upper()}_ENABLED" for kind in _PENDING_NOTIFICATIONS),
                    *(f"GOTRUE_MAILER_{part}_{kind.upper()}_NOTIFICATION" for part in ("SUBJECTS", "TEMPLATES")
                      for kind in _PENDING_NOTIFICATIONS)),
                   tuple(f"GOTRUE_MAILER_NOTIFICATIONS_{kind.upper()}_ENABLED" for kind in _PENDING_NOTIFICATIONS)),
    MissingFeature("SAML single sign-on", ("GOTRUE_RATE_LIMIT_SSO",)),
    MissingFeature("web3 sign-in", ("GOTRUE_RATE_LIMIT_WEB3",)),
    MissingFeature("SQL statement logging", ("GOTRUE_LOG_SQL",), ("GOTRUE_LOG_SQL",)),
    MissingFeature("per-request time limit", ("GOTRUE_API_MAX_REQUEST_DURATION",)),
    MissingFeature("support for several external hosts", ("GOTRUE_MAILER_EXTERNAL_HOSTS",),
                   ("GOTRUE_MAILER_EXTERNAL_HOSTS",)),
    MissingFeature("Have I Been Pwned password check", ("GOTRUE_PASSWORD_HIBP_ENABLED",),
                   ("GOTRUE_PASSWORD_HIBP_ENABLED",)),
    MissingFeature("signed refresh tokens (algorithm version 2)",
                   ("GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION",),
                   ("GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION",)),
)
# A switch is on when its value is truthy and not its default, unless said otherwise here.
_SWITCHED_ON: dict[str, Callable[[Any], bool]] = {
    "GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION": lambda version: version == 2,  # 0 and 1: legacy
}


def _covers(names: tuple[str, ...], env: str) -> bool:
    return any(env.startswith(name) if name.endswith("_") else env == name for name in names)


def _missing(setting: _Setting) -> MissingFeature | None:
    return next((row for row in NOT_YET if _covers(row.settings, setting.env[0])), None)


@dataclass(frozen=True)
class SettingInfo:
    """One setting as docs/configuration.md lists it."""

    label: str  # the name used in messages
    env: tuple[str, ...]  # every environment spelling
    missing: str | None  # the feature gotrue-lite lacks for it; None: honoured


def setting_infos() -> list[SettingInfo]:
    """Every setting gotrue-lite reads, with whether it takes effect."""
    infos = []
    for setting in _SETTINGS:
        row = _missing(setting)
        infos.append(SettingInfo(setting.label, setting.env, row.feature if row else None))
    return infos


def _value_at(settings: "Settings", path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def not_yet_warnings(settings: "Settings") -> list[str]:
    """One line per setting that is set to switch on a feature gotrue-lite does not have."""
    lines = []
    for setting in _SETTINGS:
        row = _missing(setting)
        if row is None or not _covers(row.switches, setting.env[0]):
            continue
        value = _value_at(settings, setting.path)
        switched_on = _SWITCHED_ON.get(setting.env[0])
        on = switched_on(value) if switched_on else bool(value) and value != setting.default
        if on:
            lines.append(f"{setting.label} is set, but gotrue-lite has no {row.feature} yet: this setting is ignored")
    return lines


# ---------------------------------------------------------------------------------------------
# Sources: the TOML file (flattened to env names) and ./.env.
# ---------------------------------------------------------------------------------------------


def _flatten_toml(document: dict, path: Path) -> dict[str, tuple[Any, str]]:
    """Map each leaf to its flattened env name: {GOTRUE_JWT_EXP: (value, "jwt.exp"), …}."""
    flat: dict[str, tuple[Any, str]] = {}

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            name = _flat_name(dotted)
            if isinstance(value, dict) and name not in _TABLE_VALUED_TOML:
                walk(value, dotted)
                continue
            if name in flat:
                raise ConfigError(
                    f"{name}: set twice in {path} ({flat[name][1]} and {dotted})"
                )
            flat[name] = (value, dotted)

    walk(document, "")
    return flat


def _read_toml(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{CONFIG_FILE_ENV}: {path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{CONFIG_FILE_ENV}: cannot read {path}: {error.strerror}") from None
    return _flatten_toml(document, path)


_DOTENV_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)", re.DOTALL)
_DOTENV_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _closing_quote(text: str, quote: str) -> int | None:
    index = 0
    while index < len(text):
        if quote == '"' and text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    return None


def read_dotenv(path: str | os.PathLike) -> dict[str, str]:
    """Parse a dotenv file: KEY=VALUE lines, optional quotes, # comments, `export ` prefixes.

    Double-quoted values understand \\n, \\t, \\" and may span lines; single-quoted values are
    literal. Unlike godotenv, $VAR references are not expanded (secrets may contain '$').
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    values: dict[str, str] = {}
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].lstrip()
        index += 1
        if not line.strip() or line.startswith("#"):
            continue
        match = _DOTENV_ASSIGNMENT.fullmatch(line)
        if match is None:
            raise ConfigError(f"{path}: line {number}: expected KEY=VALUE")
        key, rest = match.groups()
        quote = rest[:1]
        if quote in ("'", '"'):
            body = rest[1:]
            while (end := _closing_quote(body, quote)) is None:
                if index >= len(lines):
                    raise ConfigError(f"{path}: line {number}: {key}: unterminated quoted value")
                body += "\n" + lines[index]
                index += 1
            trailing = body[end + 1:].strip()
            if trailing and not trailing.startswith("#"):
                raise ConfigError(
                    f"{path}: line {number}: {key}: unexpected text after the closing quote"
                )
            value = body[:end]
            if quote == '"':
                value = re.sub(
                    r"\\(.)", lambda m: _DOTENV_ESCAPES.get(m[1], m[1]), value, flags=re.DOTALL
                )
        else:
            # An unquoted value ends at a '#' that follows whitespace.
            value = re.split(r"\s#", rest, maxsplit=1)[0].strip()
        values[key] = value
    return values


# ---------------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    description: str | None  # None for the process environment
    values: Mapping[str, Any]
    is_toml: bool = False


def _lookup(setting: _Setting, sources: list[_Source]):
    """The highest-priority value for the setting: (raw, source, name) or None."""
    for source in sources:
        for name in setting.toml_names if source.is_toml else setting.env:
            if name not in source.values:
                continue
            raw = source.values[name]
            if source.is_toml:
                raw = raw[0]
            if setting.blank_unset and isinstance(raw, str) and not raw.strip():
                continue  # an empty value means "not set" for non-strings
            return raw, source, name
    return None


def _describe(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _error(setting: _Setting, problem: _Invalid, raw: Any, source: _Source, name: str) -> ConfigError:
    if source.is_toml:
        label, where = setting.label, f" (in {source.description}: {source.values[name][1]})"
    else:
        label = name
        where = f" (in {source.description})" if source.description else ""
    message = str(problem)
    if problem.show_value and not setting.secret:
        message += f", got {_describe(raw)}"
    return ConfigError(f"{label}: {message}{where}")


def _choose_config_file(config_file, environ: Mapping[str, str], dotenv: Mapping[str, str],
                        cwd: Path) -> Path | None:
    named = config_file
    if named is None:
        named = environ.get(CONFIG_FILE_ENV) or dotenv.get(CONFIG_FILE_ENV)
    if named:
        path = cwd / Path(named)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_FILE_ENV}: config file not found: {path}")
        return path
    default = cwd / CONFIG_FILE_NAME
    return default if default.is_file() else None


def load_settings(
    config_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    dotenv: bool = True,
    cwd: str | os.PathLike | None = None,
) -> Settings:
    """Build Settings: defaults < gotrue_lite.toml < <cwd>/.env < environ, per logical setting."""
    environ = os.environ if environ is None else environ
    cwd = Path(os.getcwd() if cwd is None else cwd).resolve()
    dotenv_path = cwd / ".env"
    dotenv_values = read_dotenv(dotenv_path) if dotenv and dotenv_path.is_file() else {}
    toml_path = _choose_config_file(config_file, environ, dotenv_values, cwd)
    toml_values = _read_toml(toml_path) if toml_path else {}

    sources = [
        _Source(None, environ),
        _Source(str(dotenv_path), dotenv_values),
        _Source(str(toml_path), toml_values, is_toml=True),
    ]
    values: dict[str, Any] = {}
    for setting in _SETTINGS:
        found = _lookup(setting, sources)
        if found is None:
            default = setting.default
            values[setting.path] = default.compute(values) if isinstance(default, _Derived) else default
            continue
        raw, source, name = found
        try:
            value = setting.parse(raw)
            values[setting.path] = setting.fix(value) if setting.fix else value
        except _Invalid as problem:
            raise _error(setting, problem, raw, source, name) from None

    _finish(values, cwd)
    values["config_file"] = str(toml_path) if toml_path else None
    _log_unknown(environ, dotenv_values, toml_values)
    return _build(Settings, "", values)


def _finish(values: dict[str, Any], cwd: Path) -> None:
    """Derived values and checks that involve more than one setting (CONFIG.md §17)."""
    driver, sqlite_path = _database_target(values["db.url"], cwd)
    chosen = values["db.driver"]
    if chosen is not None and chosen != driver:
        raise ConfigError(
            f"GOTRUE_DB_DRIVER: {chosen!r} does not match the {driver} URL in DATABASE_URL"
        )
    values["db.driver"], values["db.sqlite_path"] = driver, sqlite_path

    secret = values["jwt.secret"]
    if secret is not None and len(secret) < 32:
        log.warning("GOTRUE_JWT_SECRET is shorter than 32 characters; use a long random secret")
    if values["jwt.exp"] < 0:
        # Go takes it too (a plain int); the tokens it signs are expired when issued.
        log.warning("GOTRUE_JWT_EXP is negative (%d): every access token is expired when issued",
                    values["jwt.exp"])

    if values["mailer.autoconfirm"] and values["mailer.allow_unverified_email_sign_ins"]:
        raise ConfigError(
            "GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS: cannot be combined with "
            "GOTRUE_MAILER_AUTOCONFIRM"
        )
    if values["security.captcha_enabled"] and not values["security.captcha_secret"]:
        raise ConfigError(
            "GOTRUE_SECURITY_CAPTCHA_SECRET: required when GOTRUE_SECURITY_CAPTCHA_ENABLED is true"
        )
    _check_db_encryption(values)
    _check_mfa_phone_template(values)
    for hook in _HOOKS:
        _check_hook(hook, values)
    _check_webhook(values)


WEBHOOK_EVENTS = ("validate", "signup", "login")  # the events gotrue-lite sends


def _check_webhook(values: dict[str, Any]) -> None:
    """netlify sends only the events listed; say so when the list cannot be what was meant."""
    if not values["webhook.url"]:
        return
    events = values["webhook.events"]
    if not events:
        log.warning("GOTRUE_WEBHOOK_URL is set but GOTRUE_WEBHOOK_EVENTS lists no event: no webhook is sent")
    unknown = [event for event in events if event not in WEBHOOK_EVENTS]
    if unknown:
        log.warning("GOTRUE_WEBHOOK_EVENTS: gotrue-lite sends only %s; never sent: %s",
                    ", ".join(WEBHOOK_EVENTS), ", ".join(unknown))


def _check_mfa_phone_template(values: dict[str, Any]) -> None:
    """Upstream parses GOTRUE_MFA_PHONE_TEMPLATE at start-up when phone MFA is on; errors stop it."""
    if not (values["mfa.phone_enroll_enabled"] or values["mfa.phone_verify_enabled"]):
        return
    import jinja2

    from .mail.gotemplate import GoTemplateError, go_to_jinja

    try:
        jinja2.Environment().parse(go_to_jinja(values["mfa.phone_template"] or "Your code is {{ .Code }}"))
    except (GoTemplateError, jinja2.TemplateError) as exc:
        raise ConfigError(f"GOTRUE_MFA_PHONE_TEMPLATE: {exc}") from None


def _check_db_encryption(values: dict[str, Any]) -> None:
    """Upstream DatabaseEncryptionConfiguration.Validate: every key 256 bits, base64url."""
    def decoded(name: str, key: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        except ValueError:
            raise ConfigError(f"{name}: not base64url") from None
        if len(raw) != 32:
            raise ConfigError(f"{name}: the key is not 256 bits")
        return raw

    keys = values["security.db_encryption_decryption_keys"] or {}
    if values["security.db_encryption_encrypt"]:
        key_id = values["security.db_encryption_encryption_key_id"]
        if not key_id:
            raise ConfigError("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY_ID: required when encrypting")
        decoded("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY", values["security.db_encryption_encryption_key"] or "")
        if not keys.get(key_id):
            raise ConfigError("GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS: must also hold the encryption key")
    for key_id, key in keys.items():
        decoded(f"GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS ({key_id})", key)


def _database_target(url: str, cwd: Path) -> tuple[str, str | None]:
    """('postgres', None) or ('sqlite', absolute path or ':memory:') for DATABASE_URL."""
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme is None:
        if url != ":memory:" and re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url):
            raise ConfigError(
                "DATABASE_URL: expected postgres://…, postgresql://…, sqlite:///path or a file path"
            )
        path = url  # a bare file path means SQLite
    elif scheme[1].lower() in ("postgres", "postgresql"):
        return "postgres", None
    elif scheme[1].lower() == "sqlite":
        rest = url[scheme.end():]
        # sqlite:///rel.db has an empty host; anything before the third slash is not a path.
        if not rest.startswith("/") or len(rest) == 1:
            raise ConfigError(
                "DATABASE_URL: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = rest[1:]
    else:
        raise ConfigError(
            f"DATABASE_URL: unsupported scheme {scheme[1]!r} (expected postgres, postgresql or sqlite)"
        )
    if path == ":memory:":
        return "sqlite", path
    return "sqlite", os.path.abspath(cwd / path)


_HOOK_HTTP_HOSTS = ("localhost", "127.0.0.1", "::1", "host.docker.internal")
# upstream's formats (internal/conf): the symmetric one is matched at the start only, as there.
_HOOK_SECRETS = (re.compile(r"v1,whsec_[A-Za-z0-9+/=]{32,88}"),
                 re.compile(r"v1a,whpk_[A-Za-z0-9+/=]{44,}:whsk_[A-Za-z0-9+/=]{44,}$"))
_PG_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,62}")


def _check_hook(hook: str, values: dict[str, Any]) -> None:
    env = f"GOTRUE_HOOK_{hook.upper()}"
    uri = values[f"hooks.{hook}.uri"]
    enabled = values[f"hooks.{hook}.enabled"]
    if enabled and not uri:
        raise ConfigError(f"{env}_URI: required when {env}_ENABLED is true")
    # Go validates every non-empty URI at start-up, enabled or not; so do we.
    if not uri:
        return
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise ConfigError(f"{env}_URI: not a valid URI") from None
    scheme = parts.scheme.lower()
    if scheme == "pg-functions":
        names = parts.path.split("/")
        if len(names) < 3:
            raise ConfigError(f"{env}_URI: expected pg-functions://<db>/<schema>/<function>")
        for kind, name in (("schema", names[1]), ("function", names[2])):
            if not _PG_NAME.fullmatch(name):
                raise ConfigError(f"{env}_URI: invalid {kind} name: {name}")
        if enabled and values["db.driver"] != "postgres":
            raise ConfigError(f"{env}_URI: pg-functions:// hooks need a PostgreSQL database (DATABASE_URL is SQLite)")
        return
    if scheme == "http" and host not in _HOOK_HTTP_HOSTS:
        raise ConfigError(f"{env}_URI: http:// is only allowed to localhost, 127.0.0.1, ::1 and "
                          "host.docker.internal; use https://")
    if scheme not in ("http", "https"):
        raise ConfigError(f"{env}_URI: expected a pg-functions:// or https:// URI")
    for secret in values[f"hooks.{hook}.secrets"]:
        if not any(form.match(secret) for form in _HOOK_SECRETS):
            raise ConfigError(
                f"{env}_SECRETS: expected v1,whsec_<base64> or v1a,whpk_<base64>:whsk_<base64>"
            )
        if enabled and not secret.startswith("v1,"):
            # upstream accepts the setting, then fails every call ("invalid signature format").
            raise ConfigError(f"{env}_SECRETS: v1a (asymmetric) secrets cannot sign hook calls; use v1,whsec_<base64>")


def _log_unknown(environ: Mapping[str, str], dotenv: Mapping[str, str],
                 toml: Mapping[str, tuple]) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    unknown = sorted(
        {name for name in (*environ, *dotenv) if name.startswith("GOTRUE_") and name not in _KNOWN_ENV}
    )
    unknown += sorted(dotted for name, (_, dotted) in toml.items() if name not in _KNOWN_TOML)
    if unknown:
        log.debug("settings not used by gotrue-lite (ignored): %s", ", ".join(unknown))


def _build(cls: type, prefix: str, values: dict[str, Any]):
    """Assemble one dataclass of the tree from the flat {path: value} dictionary."""
    hints = typing.get_type_hints(cls)
    arguments = {}
    for item in dataclasses.fields(cls):
        path, hint = prefix + item.name, hints[item.name]
        if path in values:
            arguments[item.name] = values[path]
        elif dataclasses.is_dataclass(hint):
            arguments[item.name] = _build(hint, path + ".", values)
        elif typing.get_origin(hint) is dict:
            # A dict field gathers the settings below its path: subjects.<type>, providers.<name>.…
            below = path + "."
            members = {key[len(below):]: value for key, value in values.items() if key.startswith(below)}
            member_type = typing.get_args(hint)[1]
            if dataclasses.is_dataclass(member_type):
                names = dict.fromkeys(key.split(".", 1)[0] for key in members)
                arguments[item.name] = {
                    name: _build(member_type, f"{below}{name}.", values) for name in names
                }
            else:
                arguments[item.name] = members
        else:
            raise AssertionError(f"no setting declared for {path}")  # the table is incomplete
    return cls(**arguments)
