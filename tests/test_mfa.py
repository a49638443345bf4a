"""MFA over HTTP (PHONE-MFA.md Part B): TOTP enrol/challenge/verify/unenrol, assurance levels,
limits and switches, and the attacks of issue 16, on both stores."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pyotp

from gotrue_lite import clock
from helpers import (
    PASSWORD, assert_error, bearer, claims_of, get_user, new_email, post, put_user, refresh, rows, sign_in,
    signup_session, sql, utcnow,
)
import httpx

TIMEOUT = 60


def call(server, method: str, path: str, token: str, body=None, headers=None, **kwargs) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers={**bearer(token), **(headers or {})},
                         timeout=TIMEOUT, **kwargs)


def enroll_totp(server, token: str, **body) -> dict:
    resp = call(server, "POST", "/factors", token, {"factor_type": "totp", **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def challenge(server, token: str, factor_id: str, **kwargs) -> httpx.Response:
    return call(server, "POST", f"/factors/{factor_id}/challenge", token, **kwargs)


def verify(server, token: str, factor_id: str, challenge_id: str, code: str, **kwargs) -> httpx.Response:
    return call(server, "POST", f"/factors/{factor_id}/verify", token,
                {"challenge_id": challenge_id, "code": code}, **kwargs)


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def step_up(server, session: dict) -> tuple[dict, dict]:
    """Enrol and verify a TOTP factor: (enrolment, aal2 session)."""
    factor = enroll_totp(server, session["access_token"], friendly_name="app")
    ch = challenge(server, session["access_token"], factor["id"]).json()
    resp = verify(server, session["access_token"], factor["id"], ch["id"], totp_now(factor["totp"]["secret"]))
    assert resp.status_code == 200, resp.text
    return factor, resp.json()


def test_totp_enrol_verify_and_levels(server):
    email = new_email()
    session = signup_session(server, email)
    token = session["access_token"]
    assert claims_of(token)["aal"] == "aal1"

    factor = enroll_totp(server, token, friendly_name="phone app", issuer="Example Co")
    secret = factor["totp"]["secret"]
    assert factor["type"] == "totp" and factor["friendly_name"] == "phone app"
    assert len(secret) == 32 and secret == secret.upper() and "=" not in secret
    assert factor["totp"]["uri"] == (f"otpauth://totp/Example%20Co:{email}?algorithm=SHA1&digits=6&issuer=Example%20Co"
                                     f"&period=30&secret={secret}")
    assert factor["totp"]["qr_code"].startswith("<?xml") and "<svg" in factor["totp"]["qr_code"]
    [row] = rows(server, "SELECT status, secret, factor_type FROM mfa_factors WHERE id = $1", factor["id"])
    assert row == {"status": "unverified", "secret": secret, "factor_type": "totp"}

    ch = challenge(server, token, factor["id"])
    assert ch.status_code == 200, ch.text
    body = ch.json()
    assert body["type"] == "totp" and abs(body["expires_at"] - (int(time.time()) + 300)) <= 2

    assert_error(verify(server, token, factor["id"], body["id"], "000000" if totp_now(secret) != "000000" else "111111"),
                 422, "mfa_verification_failed", "Invalid TOTP code entered")
    resp = verify(server, token, factor["id"], body["id"], totp_now(secret))
    assert resp.status_code == 200, resp.text
    stepped = resp.json()
    claims = claims_of(stepped["access_token"])
    assert claims["aal"] == "aal2"
    assert [e["method"] for e in claims["amr"]] == ["totp", "password"]
    assert claims["session_id"] == claims_of(token)["session_id"]
    assert stepped["refresh_token"] != session["refresh_token"]
    assert stepped["user"]["factors"][0]["status"] == "verified"
    [srow] = rows(server, "SELECT aal, factor_id FROM sessions WHERE id = $1", claims["session_id"])
    assert srow == {"aal": "aal2", "factor_id": factor["id"]}

    # The challenge is single use.
    assert_error(verify(server, token, factor["id"], body["id"], totp_now(secret)), 422, "mfa_ip_address_mismatch",
                 "Challenge and verify IP addresses mismatch.")
    # Refresh keeps aal2.
    again = refresh(server, stepped["refresh_token"]).json()
    assert claims_of(again["access_token"])["aal"] == "aal2"
    # A new sign-in starts at aal1 and is told the next level is aal2 (through the factor list).
    fresh = sign_in(server, email).json()
    assert claims_of(fresh["access_token"])["aal"] == "aal1"
    assert [f["status"] for f in fresh["user"]["factors"]] == ["verified"]


def test_limits_and_names(make_server, backend):
    server = make_server(backend, GOTRUE_MFA_MAX_ENROLLED_FACTORS="3", GOTRUE_MFA_MAX_VERIFIED_FACTORS="1")
    session = signup_session(server)
    token = session["access_token"]
    enroll_totp(server, token)  # no name
    # An empty name clashes with another empty one, as upstream.
    assert_error(call(server, "POST", "/factors", token, {"factor_type": "totp"}), 422, "mfa_factor_name_conflict",
                 'A factor with the friendly name "" for this user already exists')
    enroll_totp(server, token, friendly_name="a")
    assert_error(call(server, "POST", "/factors", token, {"factor_type": "totp", "friendly_name": "a"}), 422,
                 "mfa_factor_name_conflict", 'A factor with the friendly name "a" for this user already exists')
    enroll_totp(server, token, friendly_name="b")
    too_many = "Maximum number of verified factors reached, unenroll to continue"
    assert_error(call(server, "POST", "/factors", token, {"factor_type": "totp", "friendly_name": "c"}), 422,
                 "too_many_enrolled_mfa_factors", too_many)
    assert len(rows(server, "SELECT id FROM mfa_factors WHERE user_id = $1", session["user"]["id"])) == 3

    # One verified factor is the limit here; verifying deletes the other pending TOTP factors.
    other = signup_session(server)
    _factor, stepped = step_up(server, other)
    assert_error(call(server, "POST", "/factors", stepped["access_token"], {"factor_type": "totp",
                                                                             "friendly_name": "x"}),
                 422, "too_many_enrolled_mfa_factors", too_many)


def test_aal_rules_for_enrol_and_unenrol(server):
    email = new_email()
    session = signup_session(server, email)
    factor, stepped = step_up(server, session)
    # A second sign-in is aal1: it may neither enrol another factor nor drop the verified one.
    second = sign_in(server, email).json()
    assert_error(call(server, "POST", "/factors", second["access_token"], {"factor_type": "totp", "friendly_name": "n"}),
                 403, "insufficient_aal", "AAL2 required to enroll a new factor")
    assert_error(call(server, "DELETE", f"/factors/{factor['id']}", second["access_token"]), 422,
                 "insufficient_aal", "AAL2 required to unenroll verified factor")
    # ... nor change the password (PUT /user).
    assert_error(put_user(server, second["access_token"], {"password": "another-pass-1"}), 401, "insufficient_aal",
                 "AAL2 session is required to update email or password when MFA is enabled.")
    assert rows(server, "SELECT status FROM mfa_factors WHERE id = $1", factor["id"]) == [{"status": "verified"}]

    # The aal2 session may enrol more, and unenrol: its session falls back to aal1 on refresh.
    pending = enroll_totp(server, stepped["access_token"], friendly_name="second")
    resp = call(server, "DELETE", f"/factors/{pending['id']}", second["access_token"])  # unverified: aal1 is enough
    assert resp.status_code == 200 and resp.json() == {"id": pending["id"]}
    resp = call(server, "DELETE", f"/factors/{factor['id']}", stepped["access_token"])
    assert resp.status_code == 200, resp.text
    session_id = claims_of(stepped["access_token"])["session_id"]
    assert rows(server, "SELECT aal, factor_id FROM sessions WHERE id = $1", session_id) == [
        {"aal": "aal1", "factor_id": None}]
    after = refresh(server, stepped["refresh_token"]).json()
    claims = claims_of(after["access_token"])
    assert claims["aal"] == "aal1" and [e["method"] for e in claims["amr"]] == ["password"]
    actions = [r["payload"]["action"] for r in rows(server, "SELECT payload FROM audit_log_entries")
               if r["payload"].get("actor_id") == session["user"]["id"]]
    for action in ("factor_in_progress", "challenge_created", "verification_attempted", "factor_unenrolled"):
        assert action in actions


def test_step_up_logs_out_the_other_aal1_sessions(server):
    email = new_email()
    first = signup_session(server, email)
    second = sign_in(server, email).json()
    _factor, stepped = step_up(server, first)
    # The old aal1 refresh token of the stepped-up session is spent; the other session is gone.
    assert refresh(server, second["refresh_token"]).status_code == 400
    assert_error(get_user(server, second["access_token"]), 403, "session_not_found")
    assert refresh(server, stepped["refresh_token"]).status_code == 200
    assert len(rows(server, "SELECT id FROM sessions WHERE user_id = $1", first["user"]["id"])) == 1


def test_bad_input_and_attacks(server):
    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_totp(server, token, friendly_name="mine")
    fid, secret = factor["id"], factor["totp"]["secret"]
    ch = challenge(server, token, fid).json()["id"]

    assert_error(verify(server, token, fid, ch, ""), 400, "validation_failed", "Code needs to be non-empty")
    assert_error(call(server, "POST", f"/factors/{fid}/verify", token, {"challenge_id": "nope", "code": "123456"}),
                 400, "bad_json")
    assert_error(verify(server, token, fid, str(uuid.uuid4()), "123456"), 422, "mfa_factor_not_found",
                 "MFA factor with the provided challenge ID not found")
    assert_error(call(server, "POST", f"/factors/{fid}/verify", token, {"code": "123456"}), 422,
                 "mfa_factor_not_found")
    for wrong in ("12345", "1234567", "abcdef"):
        assert_error(verify(server, token, fid, ch, wrong), 422, "mfa_verification_failed", "Invalid TOTP code entered")
    # A challenge made from another address cannot be answered from here.
    elsewhere = challenge(server, token, fid, headers={"X-Forwarded-For": "203.0.113.9"}).json()["id"]
    assert_error(verify(server, token, fid, elsewhere, totp_now(secret)), 422, "mfa_ip_address_mismatch",
                 "Challenge and verify IP addresses mismatch.")

    # Another user's factor does not exist for me.
    intruder = signup_session(server)["access_token"]
    for method, path in (("POST", f"/factors/{fid}/challenge"), ("POST", f"/factors/{fid}/verify"),
                         ("DELETE", f"/factors/{fid}")):
        assert_error(call(server, method, path, intruder, {"challenge_id": ch, "code": totp_now(secret)}), 404,
                     "mfa_factor_not_found", "Factor not found")

    # Nothing of this stepped anything up.
    assert rows(server, "SELECT status FROM mfa_factors WHERE id = $1", fid) == [{"status": "unverified"}]
    assert rows(server, "SELECT verified_at FROM mfa_challenges WHERE factor_id = $1 AND verified_at IS NOT NULL",
                fid) == []
    assert rows(server, "SELECT authentication_method FROM mfa_amr_claims WHERE session_id = $1",
                claims_of(token)["session_id"]) == [{"authentication_method": "password"}]

    # The right code from a fresh window step still works afterwards.
    assert verify(server, token, fid, ch, totp_now(secret)).status_code == 200


def test_expiry_of_challenges_and_pending_factors(server):
    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_totp(server, token, friendly_name="slow")
    ch = challenge(server, token, factor["id"]).json()["id"]
    forgotten = enroll_totp(server, token, friendly_name="forgotten")  # never challenged
    stranger = signup_session(server)
    abandoned = enroll_totp(server, stranger["access_token"], friendly_name="abandoned")
    try:
        clock.offset = timedelta(seconds=301)
        assert_error(verify(server, token, factor["id"], ch, totp_now(factor["totp"]["secret"])), 422,
                     "mfa_challenge_expired",
                     f"MFA challenge {ch} has expired, verify against another challenge or create a new challenge.")
        assert rows(server, "SELECT id FROM mfa_challenges WHERE id = $1", ch) == []
        assert challenge(server, token, factor["id"]).status_code == 200
        # The next enrolment sweeps pending factors nobody challenged, of every user.
        enroll_totp(server, token, friendly_name="new")
        ids = {r["id"] for r in rows(server, "SELECT id FROM mfa_factors")}
        assert factor["id"] in ids  # challenged once: kept
        assert forgotten["id"] not in ids and abandoned["id"] not in ids
    finally:
        clock.offset = timedelta(0)


def test_switches_and_users_without_email(make_server, backend):
    server = make_server(backend, GOTRUE_MFA_TOTP_ENROLL_ENABLED="false", GOTRUE_MFA_TOTP_VERIFY_ENABLED="false")
    session = signup_session(server)
    token = session["access_token"]
    assert_error(call(server, "POST", "/factors", token, {"factor_type": "totp"}), 422, "mfa_totp_enroll_not_enabled",
                 "MFA enroll is disabled for TOTP")
    fid = str(uuid.uuid4())
    sql(server, "INSERT INTO mfa_factors (id, user_id, factor_type, status, created_at, updated_at, secret) "
                "VALUES ($1, $2, 'totp', 'unverified', $3, $3, 'JBSWY3DPEHPK3PXP')", fid, session["user"]["id"], utcnow())
    assert_error(challenge(server, token, fid), 422, "mfa_totp_verify_not_enabled", "MFA verification is disabled for TOTP")
    assert_error(verify(server, token, fid, str(uuid.uuid4()), "123456"), 422, "mfa_totp_verify_not_enabled")


def test_no_totp_without_an_email(make_server, backend):
    server = make_server(backend, GOTRUE_EXTERNAL_PHONE_ENABLED="true", GOTRUE_SMS_AUTOCONFIRM="true")
    resp = post(server, "/signup", {"phone": "15555550123", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert_error(call(server, "POST", "/factors", resp.json()["access_token"], {"factor_type": "totp"}), 500,
                 "unexpected_failure", "Error generating QR Code")
    assert rows(server, "SELECT id FROM mfa_factors") == []


KEY_A = "a" * 43  # 32 bytes of base64url
KEY_B = "b" * 43


def test_secrets_encrypted_at_rest(make_server, backend, tmp_path):
    env = {"GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT": "true", "GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY_ID": "a",
           "GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY": KEY_A,
           "GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS": f"a:{KEY_A}"}
    server = make_server(backend, **env)
    session = signup_session(server)
    factor = enroll_totp(server, session["access_token"])
    [row] = rows(server, "SELECT secret FROM mfa_factors WHERE id = $1", factor["id"])
    import json
    sealed = json.loads(row["secret"])
    assert sealed["key_id"] == "a" and sealed["alg"] == "aes-gcm-hkdf" and factor["totp"]["secret"] not in row["secret"]
    # A server with a new key still reads the old one, and re-seals on the next verify.
    rotated = make_server(backend, DATABASE_URL=server.db_url, **{
        **env, "GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY_ID": "b",
        "GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY": KEY_B,
        "GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS": f"a:{KEY_A},b:{KEY_B}"})
    ch = challenge(rotated, session["access_token"], factor["id"]).json()["id"]
    resp = verify(rotated, session["access_token"], factor["id"], ch, totp_now(factor["totp"]["secret"]))
    assert resp.status_code == 200, resp.text
    [row] = rows(server, "SELECT secret FROM mfa_factors WHERE id = $1", factor["id"])
    assert json.loads(row["secret"])["key_id"] == "b"


def test_challenge_and_verify_rate_limit(make_server, backend):
    server = make_server(backend, GOTRUE_RATE_LIMIT_HEADER="X-Real-IP", GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY="1")
    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_totp(server, token)
    headers = {"X-Real-IP": "198.51.100.7"}
    statuses = [challenge(server, token, factor["id"], headers=headers).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    # Verify has its own bucket.
    ch = challenge(server, token, factor["id"], headers={"X-Real-IP": "198.51.100.8"}).json()["id"]
    resp = verify(server, token, factor["id"], ch, totp_now(factor["totp"]["secret"]), headers=headers)
    assert resp.status_code == 200, resp.text


def test_allow_low_aal_limits_sessions_that_could_step_up(make_server, backend):
    server = make_server(backend, GOTRUE_SESSIONS_ALLOW_LOW_AAL="10m")
    email = new_email()
    session = signup_session(server, email)
    # No verified factor yet: nothing to step up to, the usual hour.
    assert claims_of(session["access_token"])["exp"] - claims_of(session["access_token"])["iat"] == 3600
    _factor, stepped = step_up(server, session)
    assert claims_of(stepped["access_token"])["exp"] - claims_of(stepped["access_token"])["iat"] == 3600
    low = sign_in(server, email).json()
    claims = claims_of(low["access_token"])
    assert claims["aal"] == "aal1" and claims["exp"] - claims["iat"] <= 600
    try:
        clock.offset = timedelta(seconds=601)
        assert_error(refresh(server, low["refresh_token"]), 400, "session_expired",
                     "Invalid Refresh Token: Session Expired (Low AAL: User Needs MFA Verification)")
        assert refresh(server, stepped["refresh_token"]).status_code == 200
    finally:
        clock.offset = timedelta(0)


def test_enrolment_notifications(make_server, backend):
    server = make_server(backend, GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_ENROLLED_ENABLED="true",
                         GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_UNENROLLED_ENABLED="true")
    email = new_email()
    session = signup_session(server, email)
    factor, stepped = step_up(server, session)
    assert call(server, "DELETE", f"/factors/{factor['id']}", stepped["access_token"]).status_code == 200
    mails = httpx.get(server.url + "/_dev/mail", params={"email": email}, timeout=TIMEOUT).json()["messages"]
    assert [m["subject"] for m in mails[:2]] == ["A verification method was removed from your account",
                                                  "A new verification method was added to your account"]
    assert "totp" in mails[1]["text"]


def test_long_friendly_names_are_refused(server):
    """gotrue-lite bounds the name (upstream's unique index overflows with a 500 on PostgreSQL)."""
    token = signup_session(server)["access_token"]
    import secrets
    assert_error(call(server, "POST", "/factors", token, {"factor_type": "totp", "friendly_name": secrets.token_hex(8000)}),
                 400, "validation_failed", "friendly_name is too long (at most 255 characters)")
    assert enroll_totp(server, token, friendly_name="é" * 255)["friendly_name"] == "é" * 255


def test_racing_verifies_of_one_challenge(server):
    """Eight verifies of one challenge at once: one steps up, the others are refused, never a 500."""
    from concurrent.futures import ThreadPoolExecutor

    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_totp(server, token)
    ch = challenge(server, token, factor["id"]).json()["id"]
    code = totp_now(factor["totp"]["secret"])
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: verify(server, token, factor["id"], ch, code), range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 1 and all(s == 422 for s in statuses if s != 200), [r.text for r in answers]
    assert len(rows(server, "SELECT id FROM refresh_tokens WHERE session_id = $1 AND revoked = false",
                    claims_of(token)["session_id"])) == 1


def test_a_token_without_a_session(server):
    """Upstream's 500s for session-less tokens (PHONE-MFA.md §7), with nothing written."""
    from helpers import mint

    session = signup_session(server)
    factor = enroll_totp(server, session["access_token"])
    sessionless = mint({"sub": session["user"]["id"], "role": "authenticated", "aud": "authenticated"})
    ch = challenge(server, sessionless, factor["id"]).json()["id"]
    assert_error(verify(server, sessionless, factor["id"], ch, totp_now(factor["totp"]["secret"])), 500,
                 "unexpected_failure", "Cannot read SessionId claim as UUID")
    assert rows(server, "SELECT status FROM mfa_factors WHERE id = $1", factor["id"]) == [{"status": "unverified"}]
    assert rows(server, "SELECT verified_at FROM mfa_challenges WHERE id = $1", ch) == [{"verified_at": None}]
    assert_error(call(server, "DELETE", f"/factors/{factor['id']}", sessionless), 500, "unexpected_failure",
                 "A valid session and factor are required to unenroll a factor")


def test_a_code_works_once(server):
    """gotrue-lite refuses a TOTP code already accepted for the factor, even through a new
    challenge (upstream accepts it again inside the window); the next step's code works."""
    session = signup_session(server)
    token = session["access_token"]
    factor = enroll_totp(server, token)
    secret = factor["totp"]["secret"]
    used = totp_now(secret)
    assert verify(server, token, factor["id"], challenge(server, token, factor["id"]).json()["id"], used).status_code == 200
    ch = challenge(server, token, factor["id"]).json()["id"]
    assert_error(verify(server, token, factor["id"], ch, used), 422, "mfa_verification_failed",
                 "Invalid TOTP code entered")
    # The previous step's code is older than the one used: refused too.
    previous = pyotp.TOTP(secret).at(clock.now(), counter_offset=-1)
    if previous != used:
        assert_error(verify(server, token, factor["id"], ch, previous), 422, "mfa_verification_failed")
    following = pyotp.TOTP(secret).at(clock.now(), counter_offset=1)
    assert verify(server, token, factor["id"], ch, following).status_code == 200


def test_used_steps_forget_and_stay_bounded():
    from gotrue_lite.ratelimit import UsedSteps

    now = [0.0]
    used = UsedSteps(ttl=120, max_entries=2, clock=lambda: now[0])
    assert used.claim("f1", 10) and not used.claim("f1", 10) and not used.claim("f1", 9)
    assert used.claim("f1", 11) and used.claim("f2", 11)
    now[0] = 121.0  # long past any window: forgotten
    assert used.claim("f1", 10) and len(used) == 1
    used.claim("f2", 1)
    used.claim("f3", 1)
    assert len(used) == 2  # the oldest key made room
