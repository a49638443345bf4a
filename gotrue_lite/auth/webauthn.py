"""WebAuthn factors: registration and assertion ceremonies (py_webauthn does the checks) with the
relying party of GOTRUE_WEBAUTHN_RP_ID / RP_DISPLAY_NAME / RP_ORIGINS (upstream's go-webauthn use)."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import webauthn as pywebauthn
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria, AuthenticatorTransport, PublicKeyCredentialDescriptor, ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..errors import APIError, validation
from ..models import Challenge, Factor, User
from . import Context

log = logging.getLogger("gotrue_lite.mfa")

# go-webauthn's default ceremony timeout (ms), shown to the browser.
TIMEOUT_MS = 300_000
_TRANSPORTS = [AuthenticatorTransport.USB, AuthenticatorTransport.NFC]


@dataclass(frozen=True)
class VerifyParams:
    type: str  # create | request
    credential_response: dict[str, Any]


def _std_b64(raw: bytes) -> str:
    # Go marshals []byte as standard base64: the stored credential reads like upstream's.
    return base64.b64encode(raw).decode()


def relying_party(ctx: Context) -> tuple[str, str, tuple[str, ...]]:
    rp = ctx.settings.webauthn
    if not rp.rp_id or not rp.rp_display_name or not rp.rp_origins:
        # upstream: webauthn.New refuses the configuration and the request fails
        log.error("WebAuthn needs GOTRUE_WEBAUTHN_RP_ID, GOTRUE_WEBAUTHN_RP_DISPLAY_NAME and GOTRUE_WEBAUTHN_RP_ORIGINS")
        raise APIError(500, "unexpected_failure", "WebAuthn configuration is invalid")
    return rp.rp_id, rp.rp_display_name, rp.rp_origins


def _credentials(user: User) -> list[dict[str, Any]]:
    return [f.web_authn_credential for f in user.factors
            if f.verified and f.factor_type == "webauthn" and f.web_authn_credential]


def _descriptor(credential: dict[str, Any]) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=base64.b64decode(credential["id"]), transports=_TRANSPORTS)


def begin(ctx: Context, user: User, factor: Factor) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the challenge response's `webauthn` object, the session data kept with the challenge):
    registration options for an unverified factor, request options for a verified one."""
    rp_id, rp_name, _origins = relying_party(ctx)
    challenge = secrets.token_bytes(32)
    if not factor.verified:
        options = pywebauthn.generate_registration_options(
            rp_id=rp_id, rp_name=rp_name, user_id=user.id.encode(), user_name=user.email or "",
            user_display_name=user.email or "", challenge=challenge, timeout=TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.DISCOURAGED,
                user_verification=UserVerificationRequirement.PREFERRED),
            exclude_credentials=[_descriptor(c) for c in _credentials(user)],
        )
        kind = "create"
    else:
        options = pywebauthn.generate_authentication_options(
            rp_id=rp_id, challenge=challenge, timeout=TIMEOUT_MS,
            allow_credentials=[_descriptor(c) for c in _credentials(user)],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        kind = "request"
    public_key = json.loads(pywebauthn.options_to_json(options))
    session = {"challenge": bytes_to_base64url(challenge), "user_id": bytes_to_base64url(user.id.encode()),
               "userVerification": "preferred", "type": kind}
    return {"type": kind, "credential_options": {"publicKey": public_key}}, session


def parse_verify_params(params: dict[str, Any] | None) -> VerifyParams:
    """Upstream's checks before the challenge is looked up."""
    if params is None:
        raise validation("WebAuthn config required")
    kind = params.get("type")
    if kind not in ("create", "request"):
        raise validation("WebAuthn type must be create or request")
    response = params.get("credential_response")
    if response is None:
        raise validation("credential_response required")
    if not isinstance(response, dict):
        raise validation("Invalid credential_response")
    return VerifyParams(kind, response)


async def finish(ctx: Context, user: User, factor: Factor, found: Challenge, params: VerifyParams) -> dict[str, Any]:
    """Check the browser's answer against the stored challenge; returns the factor columns to
    write (the new credential on registration, the new sign count on assertion)."""
    rp_id, _rp_name, origins = relying_party(ctx)
    session = found.web_authn_session_data or {}
    expected = base64url_to_bytes(session.get("challenge", "")) if session.get("challenge") else b""
    if not expected or session.get("type") != params.type:
        # A registration answer to a login challenge (or the reverse) cannot verify.
        raise _failed()
    try:
        if params.type == "create":
            registered = pywebauthn.verify_registration_response(
                credential=params.credential_response, expected_challenge=expected, expected_rp_id=rp_id,
                expected_origin=list(origins))
            return _stored_credential(registered, params.credential_response)
        credential = factor.web_authn_credential or {}
        if not credential or params.credential_response.get("rawId", params.credential_response.get("id")) != \
                bytes_to_base64url(base64.b64decode(credential.get("id", ""))):
            raise _failed()
        verified = pywebauthn.verify_authentication_response(
            credential=params.credential_response, expected_challenge=expected, expected_rp_id=rp_id,
            expected_origin=list(origins), credential_public_key=base64.b64decode(credential["publicKey"]),
            credential_current_sign_count=int(credential.get("authenticator", {}).get("signCount", 0)))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        # Malformed JSON structure reads as upstream's 400; a wrong signature, origin, challenge…
        # as a failed verification (upstream: 500, see the report).
        log.info("WebAuthn %s response refused for factor %s: %s", params.type, factor.id, exc)
        if _malformed(exc):
            raise validation("Invalid credential_response") from None
        raise _failed() from None
    updated = json.loads(json.dumps(credential))
    updated.setdefault("authenticator", {})["signCount"] = verified.new_sign_count
    return {"web_authn_credential": updated}


def _malformed(exc: Exception) -> bool:
    from webauthn.helpers.exceptions import InvalidCBORData, InvalidJSONStructure

    return isinstance(exc, (InvalidJSONStructure, InvalidCBORData, KeyError, TypeError)) or (
        isinstance(exc, ValueError) and not isinstance(exc, WebAuthnException))


def _failed() -> APIError:
    return APIError(422, "mfa_verification_failed", "Failed to validate WebAuthn MFA response")


def _stored_credential(registered, response: dict[str, Any]) -> dict[str, Any]:
    aaguid = registered.aaguid
    transports = (response.get("response") or {}).get("transports") or []
    return {
        "web_authn_credential": {
            "id": _std_b64(registered.credential_id),
            "publicKey": _std_b64(registered.credential_public_key),
            "attestationType": registered.fmt.value if hasattr(registered.fmt, "value") else str(registered.fmt),
            "transport": transports,
            "flags": {"userPresent": True, "userVerified": bool(registered.user_verified),
                      "backupEligible": registered.credential_device_type == "multi_device",
                      "backupState": bool(registered.credential_backed_up)},
            "authenticator": {"AAGUID": _std_b64(bytes.fromhex(aaguid.replace("-", ""))) if aaguid else "",
                              "signCount": registered.sign_count, "cloneWarning": False, "attachment": ""},
        },
        "web_authn_aaguid": aaguid or None,
    }
