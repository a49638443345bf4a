"""Multi-factor authentication: enrolling TOTP, phone and WebAuthn factors, challenging and
verifying them (which steps a session up to aal2), and unenrolling them (upstream mfa.go)."""

from __future__ import annotations

import base64
import io
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pyotp
import segno

from .. import clock, crypto
from ..errors import APIError, validation
from ..models import Challenge, Factor, Session, User
from ..store import UniqueViolation
from ..store import factors as factor_store
from ..store import sessions as session_store
from ..store import users as user_store
from ..store.base import run
from . import Client, Context, audit, dbcrypt, fields, hook_points, mfa_phone, webauthn
from .sessions import token_response

log = logging.getLogger("gotrue_lite.mfa")

# The AMR entry a verified factor of each type adds to a session.
FACTOR_AMR = {"totp": "totp", "phone": "mfa/phone", "webauthn": "mfa/webauthn"}
TYPE_NAMES = {"totp": "TOTP", "phone": "Phone", "webauthn": "WebAuthn"}
BAD_FACTOR_TYPE = "factor_type needs to be totp, phone, or webauthn"
# gotrue-lite's bound (upstream has none, and a long name overflows the unique index: a 500).
MAX_FRIENDLY_NAME = 255
TOTP_PERIOD = 30
TOTP_DIGITS = 6


@dataclass(frozen=True)
class Enrolment:
    """POST /factors' body."""

    factor_type: str
    friendly_name: str = ""
    issuer: str = ""
    phone: str = ""


# --- switches ------------------------------------------------------------------------------

def _switch(ctx: Context, factor_type: str, what: str) -> bool:
    mfa = ctx.settings.mfa
    if factor_type == "webauthn":
        return getattr(mfa, f"web_authn_{what}_enabled")
    return getattr(mfa, f"{factor_type}_{what}_enabled")


def check_enroll_enabled(ctx: Context, factor_type: str) -> None:
    if factor_type not in TYPE_NAMES:
        raise validation(BAD_FACTOR_TYPE)
    if not _switch(ctx, factor_type, "enroll"):
        raise APIError(422, f"mfa_{factor_type}_enroll_not_enabled",
                       f"MFA enroll is disabled for {TYPE_NAMES[factor_type]}")


def verify_enabled(ctx: Context, factor_type: str) -> bool:
    return factor_type in TYPE_NAMES and _switch(ctx, factor_type, "verify")


def check_verify_enabled(ctx: Context, factor_type: str, *, verifying: bool = False) -> None:
    if factor_type not in TYPE_NAMES:
        raise validation(BAD_FACTOR_TYPE)
    if not _switch(ctx, factor_type, "verify"):
        # VerifyFactor reports a disabled WebAuthn verification with the *enroll* code (upstream).
        code = "enroll" if verifying and factor_type == "webauthn" else "verify"
        raise APIError(422, f"mfa_{factor_type}_{code}_not_enabled",
                       f"MFA verification is disabled for {TYPE_NAMES[factor_type]}")


# --- loading -------------------------------------------------------------------------------

def parse_factor_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise validation("factor_id must be an UUID", 404) from None


async def load_factor(ctx: Context, user: User, factor_id: str) -> Factor:
    """The user's factor named in the path; another user's factor is "not found"."""
    factor = await factor_store.get(ctx.db, user.id, parse_factor_id(factor_id))
    if factor is None:
        raise APIError(404, "mfa_factor_not_found", "Factor not found")
    return factor


def check_friendly_name(name: str) -> str:
    if len(name) > MAX_FRIENDLY_NAME:
        raise validation(f"friendly_name is too long (at most {MAX_FRIENDLY_NAME} characters)")
    return name


def _no_session_to_enroll() -> APIError:
    return APIError(500, "unexpected_failure", "A valid session and a registered user are required to enroll a factor")


# --- enrol ---------------------------------------------------------------------------------

async def _validate_factors(ctx: Context, user: User, name: str, session: Session) -> None:
    """Limits, name uniqueness and the aal rule before a new factor (upstream validateFactors)."""
    mfa = ctx.settings.mfa
    await factor_store.delete_expired(ctx.db, clock.now() - mfa.factor_expiry_duration)
    factors = await factor_store.list_for_user(ctx.db, user.id)
    for factor in factors:
        # An empty name conflicts with another empty one, as upstream compares plain strings.
        if (factor.friendly_name or "") == name:
            raise name_conflict(name)
    verified = sum(1 for f in factors if f.verified)
    if len(factors) >= mfa.max_enrolled_factors or verified >= mfa.max_verified_factors:
        raise APIError(422, "too_many_enrolled_mfa_factors",
                       "Maximum number of verified factors reached, unenroll to continue")
    if verified > 0 and session.aal != "aal2":
        raise APIError(403, "insufficient_aal", "AAL2 required to enroll a new factor")


def name_conflict(name: str) -> APIError:
    return APIError(422, "mfa_factor_name_conflict",
                    f"A factor with the friendly name {fields.go_quote(name)} for this user already exists")


def totp_uri(issuer: str, account: str, secret: str) -> str:
    """The otpauth URI as pquerna/otp writes it: keys in alphabetical order, path escaping."""
    label = quote(f"{issuer}:{account}", safe="$&+,/:;=@")
    query = {"algorithm": "SHA1", "digits": str(TOTP_DIGITS), "issuer": issuer, "period": str(TOTP_PERIOD),
             "secret": secret}
    return f"otpauth://totp/{label}?" + "&".join(f"{k}={quote(v, safe='$&+:=@')}" for k, v in query.items())


def qr_svg(text: str) -> str:
    """Raw SVG markup of a QR code (error correction H) of `text`: the client adds the data URI."""
    out = io.BytesIO()
    segno.make(text, error="h", micro=False).save(out, kind="svg", scale=3, border=4)
    return out.getvalue().decode()


def _issuer(ctx: Context, requested: str) -> str:
    if requested:
        return requested
    site = urlsplit(ctx.settings.site_url)
    if not site.scheme or not site.netloc:
        raise APIError(500, "unexpected_failure", "site url is improperly formatted")
    return site.netloc


async def _create_factor(ctx: Context, client: Client, user: User, values: dict[str, Any],
                         traits: dict[str, Any]) -> Factor:
    try:
        async with ctx.db.transaction() as tx:
            factor = await factor_store.create(tx, {"user_id": user.id, **values})
            await audit.record(ctx, tx, user, "factor_in_progress", {"factor_id": factor.id, **traits},
                               client.ip or "")
    except UniqueViolation:
        # A concurrent enrolment took the name (or number) after the check.
        raise name_conflict(values.get("friendly_name") or "") from None
    return factor


async def enroll(ctx: Context, client: Client, user: User, session: Session | None,
                 params: Enrolment) -> dict[str, Any]:
    if session is None:
        raise _no_session_to_enroll()
    check_enroll_enabled(ctx, params.factor_type)
    check_friendly_name(params.friendly_name)
    if params.factor_type == "totp":
        return await _enroll_totp(ctx, client, user, session, params)
    if params.factor_type == "phone":
        return await _enroll_phone(ctx, client, user, session, params)
    await _validate_factors(ctx, user, params.friendly_name, session)
    factor = await _create_factor(ctx, client, user, {
        "id": str(uuid.uuid4()), "friendly_name": params.friendly_name, "factor_type": "webauthn",
    }, {"factor_type": "webauthn"})
    return {"id": factor.id, "type": "webauthn", "friendly_name": factor.friendly_name or ""}


async def _enroll_totp(ctx: Context, client: Client, user: User, session: Session,
                       params: Enrolment) -> dict[str, Any]:
    issuer = _issuer(ctx, params.issuer)
    await _validate_factors(ctx, user, params.friendly_name, session)
    if not user.email:
        # pquerna's totp.Generate refuses an empty account name.
        raise APIError(500, "unexpected_failure", "Error generating QR Code")
    # 20 random bytes: 32 base32 characters, no padding.
    secret = base64.b32encode(secrets.token_bytes(20)).decode()
    uri = totp_uri(issuer, user.email, secret)
    factor_id = str(uuid.uuid4())
    factor = await _create_factor(ctx, client, user, {
        "id": factor_id, "friendly_name": params.friendly_name, "factor_type": "totp",
        "secret": dbcrypt.seal(ctx.settings, factor_id, secret),
    }, {})
    return {
        "id": factor.id, "type": "totp", "friendly_name": factor.friendly_name or "",
        "totp": {"qr_code": qr_svg(uri), "secret": secret, "uri": uri},
    }


async def _enroll_phone(ctx: Context, client: Client, user: User, session: Session,
                        params: Enrolment) -> dict[str, Any]:
    if not params.phone:
        raise validation("Phone number required to enroll Phone factor")
    phone = fields.phone(params.phone)
    stale = []
    for factor in user.factors:
        if factor.factor_type == "phone" and factor.phone == phone:
            if factor.verified:
                raise APIError(422, "mfa_verified_factor_exists",
                               "A verified phone factor already exists, unenroll the existing factor to continue")
            stale.append(factor.id)
    # Upstream deletes pending factors of the same number before (and whatever) the checks.
    await factor_store.delete_ids(ctx.db, stale)
    await _validate_factors(ctx, user, params.friendly_name, session)
    factor = await _create_factor(ctx, client, user, {
        "id": str(uuid.uuid4()), "friendly_name": params.friendly_name, "factor_type": "phone", "phone": phone,
    }, {"factor_type": "phone"})
    # The number as the request spelt it (upstream echoes it verbatim).
    return {"id": factor.id, "type": "phone", "friendly_name": factor.friendly_name or "", "phone": params.phone}


# --- challenge -----------------------------------------------------------------------------

def _expires_at(ctx: Context, challenge: Challenge) -> int:
    return clock.unix(challenge.created_at) + int(ctx.settings.mfa.challenge_expiry_duration)


async def _write_challenge(ctx: Context, client: Client, user: User, factor: Factor, challenge_id: str | None = None,
                           **extra: Any) -> Challenge:
    challenge_id = challenge_id or str(uuid.uuid4())
    for attempt in range(3):
        try:
            async with ctx.db.transaction() as tx:
                challenge = await factor_store.create_challenge(tx, {
                    "id": challenge_id, "factor_id": factor.id, "created_at": clock.now(),
                    "ip_address": client.ip or "0.0.0.0", **extra,
                })
                await audit.record(ctx, tx, user, "challenge_created",
                                   {"factor_id": factor.id, "factor_status": factor.status}, client.ip or "")
            return challenge
        except UniqueViolation:
            # last_challenged_at is UNIQUE across all factors (upstream's schema): another
            # challenge took the same microsecond. A moment later is another value.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def challenge(ctx: Context, client: Client, user: User, factor: Factor, channel: str = "") -> dict[str, Any]:
    check_verify_enabled(ctx, factor.factor_type)
    if factor.factor_type == "phone":
        # The SMS goes out before the row is written, as upstream.
        challenge_id = str(uuid.uuid4())
        extra = await mfa_phone.send_code(ctx, factor, channel, challenge_id, user=user, client=client)
        created = await _write_challenge(ctx, client, user, factor, challenge_id, **extra)
        return {"id": created.id, "type": "phone", "expires_at": _expires_at(ctx, created)}
    if factor.factor_type == "webauthn":
        options, session_data = webauthn.begin(ctx, user, factor)
        created = await _write_challenge(ctx, client, user, factor, web_authn_session_data=session_data)
        return {"id": created.id, "type": "webauthn", "expires_at": _expires_at(ctx, created), "webauthn": options}
    created = await _write_challenge(ctx, client, user, factor)
    return {"id": created.id, "type": factor.factor_type, "expires_at": _expires_at(ctx, created)}


# --- verify --------------------------------------------------------------------------------

def totp_step(secret: str, code: str) -> int | None:
    """The time step `code` belongs to, checked as pquerna's ValidateCustom does (SHA-1, 6
    digits, 30 s, one step of skew either way), or None when it is not valid now."""
    code = code.strip()
    if len(code) != TOTP_DIGITS:
        return None
    secret = secret.strip().upper()
    now = clock.now()
    try:
        totp = pyotp.TOTP(secret + "=" * (-len(secret) % 8), digits=TOTP_DIGITS, interval=TOTP_PERIOD)
        current = totp.timecode(now)
        matched = None
        # Every candidate is computed and compared in constant time, whichever matches.
        for step in (current, current + 1, current - 1):
            if crypto.equal(totp.generate_otp(step), code) and matched is None:
                matched = step
        return matched
    except ValueError:  # a secret that is no base32 (written by hand?) checks nothing
        return None


def _totp_accepted(ctx: Context, factor: Factor, code: str) -> bool:
    secret, _stale_key = dbcrypt.open_(ctx.settings, factor.id, factor.secret or "")
    step = totp_step(secret, code)
    if step is None:
        return False
    # gotrue-lite refuses a code already accepted for this factor, even through a new challenge
    # (RFC 6238 §5.2; upstream keeps no record and accepts it again inside the window).
    return ctx.used_totp_steps is None or ctx.used_totp_steps.claim(factor.id, step)


async def _valid_challenge(ctx: Context, client: Client, factor: Factor, challenge_id: str | None) -> Challenge:
    """The challenge to verify against: this factor's, unused, from this address, still fresh."""
    found = await factor_store.get_challenge(ctx.db, factor.id, challenge_id or str(uuid.UUID(int=0)))
    if found is None:
        raise APIError(422, "mfa_factor_not_found", "MFA factor with the provided challenge ID not found")
    if found.verified_at is not None or found.ip_address != (client.ip or "0.0.0.0"):
        raise APIError(422, "mfa_ip_address_mismatch", "Challenge and verify IP addresses mismatch.")
    expiry = timedelta(seconds=ctx.settings.mfa.challenge_expiry_duration)
    if clock.now() > found.created_at + expiry:
        await factor_store.delete_challenge(ctx.db, found.id)
        raise APIError(422, "mfa_challenge_expired",
                       f"MFA challenge {found.id} has expired, verify against another challenge or create a new "
                       "challenge.")
    return found


def session_id_of(claims: dict[str, Any]) -> str:
    try:
        return str(uuid.UUID(str(claims.get("session_id") or "")))
    except ValueError:
        raise APIError(500, "unexpected_failure", "Cannot read SessionId claim as UUID") from None


async def verify(ctx: Context, client: Client, user: User, claims: dict[str, Any], factor: Factor,
                 challenge_id: str | None, code: str, webauthn_params: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    if not code and factor.factor_type != "webauthn":
        raise validation("Code needs to be non-empty")
    check_verify_enabled(ctx, factor.factor_type, verifying=True)
    if factor.factor_type == "webauthn":
        parsed = webauthn.parse_verify_params(webauthn_params)
        webauthn.relying_party(ctx)
        found = await _valid_challenge(ctx, client, factor, challenge_id)
        credential = await webauthn.finish(ctx, user, factor, found, parsed)
        # A WebAuthn challenge is deleted, not marked (upstream); a racing verify lost it.
        if not await factor_store.delete_challenge(ctx.db, found.id):
            raise APIError(422, "mfa_factor_not_found", "MFA factor with the provided challenge ID not found")
        return await _step_up(ctx, client, user, claims, factor, found, credential=credential)
    found = await _valid_challenge(ctx, client, factor, challenge_id)
    if factor.factor_type == "phone":
        valid = await mfa_phone.check_code(ctx, factor, found, code)
        message = "Invalid MFA Phone code entered"
    else:
        valid = _totp_accepted(ctx, factor, code)
        message = "Invalid TOTP code entered"
    if hook_points.enabled(ctx, "mfa_verification_attempt"):
        await hook_points.mfa_attempt(ctx, client, user, factor.id, factor.factor_type, valid)
    if not valid:
        raise APIError(422, "mfa_verification_failed", message)
    return await _step_up(ctx, client, user, claims, factor, found)


async def _step_up(ctx: Context, client: Client, user: User, claims: dict[str, Any], factor: Factor,
                   found: Challenge, *, credential: dict[str, Any] | None = None) -> dict[str, Any]:
    """A verified factor raises the session to aal2, all in one transaction (upstream
    verify*Factor + updateMFASessionAndClaims)."""
    completes_enrolment = not factor.verified
    async with ctx.db.transaction() as tx:
        await audit.record(ctx, tx, user, "verification_attempted", {
            "factor_id": factor.id, "challenge_id": found.id, "factor_type": factor.factor_type}, client.ip or "")
        if factor.factor_type != "webauthn" and not await factor_store.mark_challenge_verified(tx, found.id):
            # A racing verify of the same challenge won.
            raise APIError(422, "mfa_ip_address_mismatch", "Challenge and verify IP addresses mismatch.")
        changes: dict[str, Any] = {}
        if not factor.verified:
            changes["status"] = "verified"
        if credential is not None:
            changes.update(credential)
        if factor.factor_type == "totp":
            secret, stale_key = dbcrypt.open_(ctx.settings, factor.id, factor.secret or "")
            if stale_key:
                changes["secret"] = dbcrypt.seal(ctx.settings, factor.id, secret)
        if changes:
            await factor_store.update_factor(tx, factor.id, **changes)
        session_id = session_id_of(claims)
        await session_store.record_method(tx, session_id, FACTOR_AMR[factor.factor_type])
        locked_user, session = await run(tx, user_store.lock_session(session_id))
        if session is None or locked_user is None or locked_user.id != user.id:
            raise APIError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        issued = await _rotate_for_step_up(ctx, tx, user, session.id)
        amr = await session_store.methods(tx, session.id)
        aal = "aal2" if any(e.method in FACTOR_AMR.values() for e in amr) else "aal1"
        await session_store.set_aal(tx, session.id, aal, factor.id)
        # Every other session not yet at aal2 goes (an MFA sign-in logs the others out).
        await session_store.delete_below_aal2(tx, user.id)
        await factor_store.delete_unverified_of_type(tx, user.id, factor.factor_type)
        fresh = await user_store.get(tx, user.id)
        # In the transaction: a failing custom_access_token hook undoes the step-up (upstream).
        response = await token_response(ctx, fresh, session.id, amr, issued, session.created_at,
                                        method=FACTOR_AMR[factor.factor_type], client=client, tx=tx)
    if completes_enrolment:
        await _notify(ctx, fresh, "mfa_factor_enrolled", factor.factor_type)
    return response


async def _rotate_for_step_up(ctx: Context, tx, user: User, session_id: str) -> str:
    """A new refresh token in the same session: the aal1 one the client held is revoked."""
    active = await run(tx, session_store.active_refresh_token(session_id))
    issued = crypto.new_refresh_token()
    if active is not None:
        await run(tx, session_store.revoke_refresh_token(active.id))
    await run(tx, session_store.add_refresh_token(issued, user.id, session_id, active.token if active else None))
    await audit.record(ctx, tx, user, "token_revoked")
    return issued


# --- unenrol -------------------------------------------------------------------------------

async def unenroll(ctx: Context, client: Client, user: User, session: Session | None, factor: Factor) -> dict[str, Any]:
    if session is None:
        raise APIError(500, "unexpected_failure", "A valid session and factor are required to unenroll a factor")
    if factor.verified and session.aal != "aal2":
        raise APIError(422, "insufficient_aal", "AAL2 required to unenroll verified factor")
    async with ctx.db.transaction() as tx:
        await factor_store.delete(tx, factor, FACTOR_AMR[factor.factor_type])
        await audit.record(ctx, tx, user, "factor_unenrolled",
                           {"factor_id": factor.id, "factor_status": factor.status, "session_id": session.id},
                           client.ip or "")
    await _notify(ctx, user, "mfa_factor_unenrolled", factor.factor_type)
    return {"id": factor.id}


async def _notify(ctx: Context, user: User, notice: str, factor_type: str) -> None:
    """The optional "verification method added/removed" mail; failing to send it fails nothing."""
    if not ctx.settings.mailer.notifications.get(notice) or not user.email:
        return
    if hook_points.enabled(ctx, "send_email"):
        try:
            await hook_points.send_email(ctx, None, None, user, hook_points.email_data(
                action=f"{notice}_notification", site_url=ctx.settings.api.external_url,
                redirect_to=ctx.settings.site_url, factor_type=factor_type))
        except APIError as exc:
            log.warning("unable to send the %s notification through the send_email hook: %s", notice, exc.message)
        return
    if ctx.mailer is None:
        return
    try:
        await ctx.mailer.send(f"{notice}_notification", user.email,
                              {"Email": user.email, "FactorType": factor_type, "Data": user.user_metadata})
    except Exception as exc:  # noqa: BLE001 - upstream logs and carries on
        log.warning("unable to send the %s notification: %s", notice, exc)
