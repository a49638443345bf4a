"""The email flows driven through the published Python client (supabase_auth), against a server
whose mail goes to a real SMTP sink (GOTRUE_MAILER_AUTOCONFIRM=false), on both backends.

Every link and code used here is read from delivered mail; the assertions are on what the
client returns (sessions, users, errors), never on server internals.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

from email_e2e import HEX56, pass_cooldown
from helpers import new_email
from smtp_server import ALLOWED_REDIRECT, _reset_clock, mail_fixture  # noqa: F401

SITE_URL = "http://localhost:3000"
PASSWORD = "client-email-pw-1"
NEW_PASSWORD = "client-email-pw-2"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REFRESH_TOKEN_SHAPE = re.compile(r"^[a-z2-7]{12}$")

# One mailing server per backend for the module, with anonymous sign-ins allowed.
client_mail = mail_fixture(GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED="true")

HTTP = httpx.Client(timeout=15, follow_redirects=False)


@pytest.fixture
def client_for():
    """Factory: client_for(server, flow_type="implicit") -> SyncGoTrueClient, configured like
    supabase-py configures it (apikey + anon bearer on every call), without timers."""
    clients: list[SyncGoTrueClient] = []

    def factory(server, flow_type: str = "implicit") -> SyncGoTrueClient:
        client = SyncGoTrueClient(
            url=server.url,
            headers={"apikey": server.anon_key, "Authorization": f"Bearer {server.anon_key}"},
            auto_refresh_token=False,
            persist_session=False,
            flow_type=flow_type,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


# --- helpers ------------------------------------------------------------------------------


def follow(link: str) -> httpx.Response:
    """Open a mailed link like a browser, without following the 303 it answers."""
    resp = HTTP.get(link)
    assert resp.status_code == 303, f"{link} -> {resp.status_code}: {resp.text}"
    return resp


def fragment_of(resp: httpx.Response) -> dict[str, str]:
    location = resp.headers["location"]
    base, _, fragment = location.partition("#")
    return dict(parse_qsl(fragment, keep_blank_values=True))


def session_from_link(link: str, vtype: str) -> tuple[str, str]:
    """(access_token, refresh_token) from the implicit-flow fragment of a followed link."""
    resp = follow(link)
    location = resp.headers["location"]
    assert location.startswith(SITE_URL), location
    values = fragment_of(resp)
    assert "error" not in values and "error_code" not in values, location
    assert values.get("type") == vtype, location
    assert values.get("token_type") == "bearer", location
    assert REFRESH_TOKEN_SHAPE.match(values.get("refresh_token", "")), location
    return values["access_token"], values["refresh_token"]


def code_from_link(link: str) -> str:
    """The PKCE auth code in the ?code= of a followed link's 303 (no fragment)."""
    resp = follow(link)
    location = resp.headers["location"]
    base, _, fragment = location.partition("#")
    assert fragment == "", location
    assert base.split("?")[0] == SITE_URL, location
    query = dict(parse_qsl(urlsplit(base).query, keep_blank_values=True))
    assert UUID.match(query.get("code", "")), location
    return query["code"]


def assert_session(res, email: str | None = None):
    session = res.session
    assert session is not None, res
    assert session.access_token and session.token_type == "bearer"
    assert session.expires_in > 0 and session.expires_at
    assert REFRESH_TOKEN_SHAPE.match(session.refresh_token)
    assert res.user is not None and res.user.id == session.user.id
    if email is not None:
        assert res.user.email == email
    return session


def amr(client: SyncGoTrueClient) -> list[str]:
    return [entry["method"] for entry in client.get_claims()["claims"]["amr"]]


def signed_up_unconfirmed(client: SyncGoTrueClient, email: str):
    res = client.sign_up({"email": email, "password": PASSWORD})
    assert res.session is None, "autoconfirm is off: sign-up must not return a session"
    assert res.user is not None and res.user.email == email
    assert res.user.email_confirmed_at is None and res.user.confirmation_sent_at is not None
    return res.user


def confirmed_user(mail_server_, client: SyncGoTrueClient, email: str):
    """Sign up and confirm through the mailed link; the client holds the resulting session."""
    server, sink = mail_server_
    signed_up_unconfirmed(client, email)
    access, refresh = session_from_link(sink.one(email).link, "signup")
    res = client.set_session(access, refresh)
    assert_session(res, email)
    return res.user


def api_error(excinfo) -> tuple[int, str | None, str]:
    err = excinfo.value
    return err.status, err.code, err.message


# --- sign-up confirmation -----------------------------------------------------------------


def test_sign_up_then_follow_the_mailed_link(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("csignup")
    user = signed_up_unconfirmed(client, email)
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    assert mail.link_query["type"] == "signup" and HEX56.match(mail.link_query["token"])

    with pytest.raises(AuthApiError) as excinfo:
        client.sign_in_with_password({"email": email, "password": PASSWORD})
    assert api_error(excinfo) == (400, "email_not_confirmed", "Email not confirmed")

    access, refresh = session_from_link(mail.link, "signup")
    res = client.set_session(access, refresh)
    session = assert_session(res, email)
    assert res.user.id == user.id
    assert session.access_token == access and session.refresh_token == refresh
    me = client.get_user().user
    assert me.id == user.id and me.email_confirmed_at is not None
    assert me.user_metadata.get("email_verified") is True

    other = client_for(server)
    assert_session(other.sign_in_with_password({"email": email, "password": PASSWORD}), email)


@pytest.mark.parametrize("target, lands_on", [
    (f"{ALLOWED_REDIRECT}/welcome?from=signup", f"{ALLOWED_REDIRECT}/welcome?from=signup"),  # in GOTRUE_URI_ALLOW_LIST
    (f"{SITE_URL}/welcome", f"{SITE_URL}/welcome"),  # under SITE_URL
    ("https://evil.example/steal", SITE_URL),  # neither: the link falls back to SITE_URL
])
def test_sign_up_with_email_redirect_to_puts_it_into_the_confirmation_link(client_mail, client_for, target, lands_on):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("credirect")
    res = client.sign_up({"email": email, "password": PASSWORD, "options": {"email_redirect_to": target}})
    assert res.session is None and res.user is not None and res.user.email == email
    mail = sink.one(email)
    assert mail.link_query["type"] == "signup"
    assert mail.link_query["redirect_to"] == lands_on

    location = follow(mail.link).headers["location"]
    base, _, fragment = location.partition("#")
    assert base == lands_on, location
    values = dict(parse_qsl(fragment, keep_blank_values=True))
    assert values.get("type") == "signup" and values.get("access_token"), location
    res = client.set_session(values["access_token"], values["refresh_token"])
    assert_session(res, email)
    assert res.user.email_confirmed_at is not None


@pytest.mark.parametrize("vtype", ["signup", "email"])
def test_sign_up_then_verify_the_mailed_code(client_mail, client_for, vtype):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("csignupcode")
    user = signed_up_unconfirmed(client, email)
    code = sink.one(email).code

    with pytest.raises(AuthApiError) as excinfo:
        client.verify_otp({"email": email, "token": "000000" if code != "000000" else "111111", "type": vtype})
    assert api_error(excinfo) == (403, "otp_expired", "Token has expired or is invalid")

    res = client.verify_otp({"email": email, "token": code, "type": vtype})
    assert_session(res, email)
    assert res.user.id == user.id and res.user.email_confirmed_at is not None
    assert client.get_session().access_token == res.session.access_token
    assert client.get_user().user.email_confirmed_at is not None

    # A code is good once.
    with pytest.raises(AuthApiError) as excinfo:
        client_for(server).verify_otp({"email": email, "token": code, "type": vtype})
    assert api_error(excinfo) == (403, "otp_expired", "Token has expired or is invalid")


def test_resend_signup_mails_a_new_confirmation(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("cresend")
    signed_up_unconfirmed(client, email)

    with pytest.raises(AuthApiError) as excinfo:
        client.resend({"type": "signup", "email": email})
    status, code, message = api_error(excinfo)
    assert (status, code) == (429, "over_email_send_rate_limit")
    assert re.fullmatch(r"For security purposes, you can only request this after \d+ seconds\.", message)

    pass_cooldown()
    res = client.resend({"type": "signup", "email": email})
    assert res.user is None and res.session is None
    mails = sink.to(email)
    assert len(mails) == 2 and mails[-1].subject == "Confirm your email address"
    assert mails[-1].code != mails[0].code or mails[-1].link != mails[0].link

    res = client.verify_otp({"email": email, "token": mails[-1].code, "type": "signup"})
    assert_session(res, email)
    assert res.user.email_confirmed_at is not None


# --- passwordless sign-in -------------------------------------------------------------------


def test_sign_in_with_otp_creates_and_then_signs_in(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("cotp")
    res = client.sign_in_with_otp({"email": email})
    assert res.user is None and res.session is None
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    res = client.verify_otp({"email": email, "token": mail.code, "type": "email"})
    first = assert_session(res, email)
    assert res.user.email_confirmed_at is not None
    assert amr(client) == ["otp"]

    pass_cooldown()
    other = client_for(server)
    other.sign_in_with_otp({"email": email, "options": {"should_create_user": False}})
    mail = sink.last(email)
    assert mail.subject == "Your sign-in link"
    res = other.verify_otp({"email": email, "token": mail.code, "type": "email"})
    second = assert_session(res, email)
    assert res.user.id == first.user.id and second.refresh_token != first.refresh_token


def test_sign_in_with_otp_for_an_unknown_address_without_creating(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("cnocreate")
    with pytest.raises(AuthApiError) as excinfo:
        client.sign_in_with_otp({"email": email, "options": {"should_create_user": False}})
    assert api_error(excinfo) == (422, "otp_disabled", "Signups not allowed for otp")
    assert sink.to(email) == []


@pytest.mark.parametrize("vtype", ["email", "magiclink"])
def test_sign_in_with_otp_then_verify_the_token_hash(client_mail, client_for, vtype):
    server, sink = client_mail
    email = new_email("chash")
    confirmed_user(client_mail, client_for(server), email)
    pass_cooldown()

    client = client_for(server)
    client.sign_in_with_otp({"email": email})
    mail = sink.last(email)
    assert mail.subject == "Your sign-in link"
    token_hash = mail.link_query["token"]
    assert HEX56.match(token_hash) and mail.link_query["type"] == "magiclink"

    res = client.verify_otp({"token_hash": token_hash, "type": vtype})
    assert_session(res, email)
    assert client.get_user().user.email == email
    assert amr(client) == ["otp"]  # POST /verify always signs in with the "otp" method

    with pytest.raises(AuthApiError) as excinfo:
        client_for(server).verify_otp({"token_hash": token_hash, "type": vtype})
    assert api_error(excinfo) == (403, "otp_expired", "Email link is invalid or has expired")


def test_magic_link_code_for_a_confirmed_user(client_mail, client_for):
    server, sink = client_mail
    email = new_email("cmagic")
    confirmed_user(client_mail, client_for(server), email)
    pass_cooldown()
    client = client_for(server)
    client.sign_in_with_otp({"email": email})
    res = client.verify_otp({"email": email, "token": sink.last(email).code, "type": "magiclink"})
    assert_session(res, email)


# --- password recovery -----------------------------------------------------------------------


def test_reset_password_for_email_then_verify_the_code_and_set_a_new_password(client_mail, client_for):
    server, sink = client_mail
    email = new_email("crecover")
    user = confirmed_user(client_mail, client_for(server), email)
    pass_cooldown()

    client = client_for(server)
    assert client.reset_password_for_email(email) is None
    mail = sink.last(email)
    assert mail.subject == "Reset your password"
    assert mail.link_query["type"] == "recovery"

    res = client.verify_otp({"email": email, "token": mail.code, "type": "recovery"})
    assert_session(res, email)
    assert res.user.id == user.id
    assert amr(client) == ["otp"]  # POST /verify: "otp", whatever the type

    updated = client.update_user({"password": NEW_PASSWORD}).user
    assert updated.id == user.id and updated.email == email

    ok = client_for(server).sign_in_with_password({"email": email, "password": NEW_PASSWORD})
    assert_session(ok, email)
    with pytest.raises(AuthApiError) as excinfo:
        client_for(server).sign_in_with_password({"email": email, "password": PASSWORD})
    assert api_error(excinfo) == (400, "invalid_credentials", "Invalid login credentials")


def test_reset_password_for_an_unknown_address_sends_nothing(client_mail, client_for):
    server, sink = client_mail
    email = new_email("cnobody")
    assert client_for(server).reset_password_for_email(email) is None
    assert sink.to(email) == []


# --- reauthentication ------------------------------------------------------------------------


def test_reauthenticate_mails_a_code(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    email = new_email("creauth")
    confirmed_user(client_mail, client, email)
    before = len(sink.to(email))

    res = client.reauthenticate()
    assert res.user is None and res.session is None
    mails = sink.to(email)
    assert len(mails) == before + 1
    code = mails[-1].code
    assert re.fullmatch(r"\d{6}", code)
    assert mails[-1].subject == f"{code} is your verification code"

    with pytest.raises(AuthApiError) as excinfo:
        client.reauthenticate()
    assert excinfo.value.status == 429 and excinfo.value.code == "over_email_send_rate_limit"

    # The nonce is accepted with a password change.
    updated = client.update_user({"password": NEW_PASSWORD, "nonce": code}).user
    assert updated.email == email
    assert_session(client_for(server).sign_in_with_password({"email": email, "password": NEW_PASSWORD}), email)


# --- PKCE -----------------------------------------------------------------------------------


def test_pkce_sign_in_with_otp_link_gives_a_code_the_client_exchanges(client_mail, client_for):
    server, sink = client_mail
    email = new_email("cpkceotp")

    client = client_for(server, "pkce")
    client.sign_in_with_otp({"email": email})
    mail = sink.one(email)
    assert mail.subject == "Confirm your email address"
    assert mail.link_query["token"].startswith("pkce_") and mail.link_query["type"] == "signup"
    code = code_from_link(mail.link)
    res = client.exchange_code_for_session({"auth_code": code})
    assert_session(res, email)
    assert res.user.email_confirmed_at is not None
    assert client.get_session().access_token == res.session.access_token
    assert client.get_user().user.email == email

    # A code is exchanged once.
    with pytest.raises(AuthApiError) as excinfo:
        client.exchange_code_for_session({"auth_code": code, "code_verifier": "y" * 50})
    assert api_error(excinfo) == (404, "flow_state_not_found", "invalid flow state, no valid flow state found")

    # And a magic link for the now confirmed user.
    pass_cooldown()
    other = client_for(server, "pkce")
    other.sign_in_with_otp({"email": email})
    mail = sink.last(email)
    assert mail.subject == "Your sign-in link"
    assert mail.link_query["token"].startswith("pkce_") and mail.link_query["type"] == "magiclink"
    res = other.exchange_code_for_session({"auth_code": code_from_link(mail.link)})
    assert_session(res, email)
    assert amr(other) == ["magiclink"]


def test_pkce_code_needs_the_right_verifier(client_mail, client_for):
    server, sink = client_mail
    email = new_email("cpkcebad")
    client = client_for(server, "pkce")
    client.sign_in_with_otp({"email": email})
    code = code_from_link(sink.one(email).link)
    stranger = client_for(server, "pkce")
    with pytest.raises(AuthApiError) as excinfo:
        stranger.exchange_code_for_session({"auth_code": code, "code_verifier": "x" * 50})
    assert api_error(excinfo) == (400, "bad_code_verifier", "code challenge does not match previously saved code verifier")
    # The owner still can.
    assert_session(client.exchange_code_for_session({"auth_code": code}), email)


def test_pkce_reset_password_for_email(client_mail, client_for):
    server, sink = client_mail
    email = new_email("cpkcerec")
    confirmed_user(client_mail, client_for(server), email)
    pass_cooldown()

    client = client_for(server, "pkce")
    client.reset_password_for_email(email)
    mail = sink.last(email)
    assert mail.subject == "Reset your password"
    assert mail.link_query["token"].startswith("pkce_") and mail.link_query["type"] == "recovery"
    res = client.exchange_code_for_session({"auth_code": code_from_link(mail.link)})
    assert_session(res, email)
    assert amr(client) == ["recovery"]

    client.update_user({"password": NEW_PASSWORD})
    assert_session(client_for(server).sign_in_with_password({"email": email, "password": NEW_PASSWORD}), email)
    with pytest.raises(AuthApiError) as excinfo:
        client_for(server).sign_in_with_password({"email": email, "password": PASSWORD})
    assert api_error(excinfo) == (400, "invalid_credentials", "Invalid login credentials")


# --- anonymous users --------------------------------------------------------------------------


def test_anonymous_sign_in_then_convert_with_an_email_and_a_password(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    res = client.sign_in_anonymously({"options": {"data": {"nickname": "anon"}}})
    session = assert_session(res)
    anon = res.user
    assert anon.is_anonymous is True
    assert anon.email in (None, "") and anon.identities == []
    assert anon.user_metadata.get("nickname") == "anon"
    claims = client.get_claims()["claims"]
    assert claims["is_anonymous"] is True and claims["sub"] == anon.id
    assert claims["role"] == "authenticated"

    email = new_email("canon")
    updated = client.update_user({"email": email}).user
    assert updated.id == anon.id
    assert updated.new_email == email and updated.email_change_sent_at is not None
    assert updated.is_anonymous is True  # not yet confirmed

    mail = sink.one(email)
    assert mail.subject == "Confirm your new email address"
    assert mail.link_query["type"] == "email_change"
    resp = follow(mail.link)
    values = fragment_of(resp)
    assert "error" not in values and "error_code" not in values, resp.headers["location"]
    assert values.get("type") == "email_change" and values.get("access_token"), resp.headers["location"]

    me = client.get_user().user
    assert me.id == anon.id
    assert me.email == email and me.email_confirmed_at is not None
    assert me.is_anonymous is False
    assert [i.provider for i in me.identities] == ["email"]

    refreshed = client.refresh_session()
    assert refreshed.session.refresh_token != session.refresh_token
    assert refreshed.user.is_anonymous is False
    claims = client.get_claims()["claims"]
    assert claims["is_anonymous"] is False and claims["email"] == email

    client.update_user({"password": NEW_PASSWORD})
    ok = client_for(server).sign_in_with_password({"email": email, "password": NEW_PASSWORD})
    assert_session(ok, email)
    assert ok.user.id == anon.id and ok.user.is_anonymous is False


# --- auth state events ------------------------------------------------------------------------


def test_on_auth_state_change_reports_sign_in_refresh_update_and_sign_out(client_mail, client_for):
    server, sink = client_mail
    client = client_for(server)
    seen: list[tuple[str, str | None]] = []
    subscription = client.on_auth_state_change(
        lambda event, session: seen.append((event, session.access_token if session else None)))

    email = new_email("cevents")
    signed_up_unconfirmed(client, email)
    assert seen == [], "a sign-up without a session is no sign-in"

    verified = client.verify_otp({"email": email, "token": sink.one(email).code, "type": "signup"})
    assert seen == [("SIGNED_IN", verified.session.access_token)]

    refreshed = client.refresh_session()
    assert refreshed.session.refresh_token != verified.session.refresh_token
    assert seen[1:] == [("TOKEN_REFRESHED", refreshed.session.access_token)]

    updated = client.update_user({"data": {"theme": "dark"}})
    assert updated.user.user_metadata["theme"] == "dark"
    assert seen[2:] == [("USER_UPDATED", refreshed.session.access_token)]

    signed_in = client.sign_in_with_password({"email": email, "password": PASSWORD})
    assert seen[3:] == [("SIGNED_IN", signed_in.session.access_token)]

    client.sign_out()
    assert seen[4:] == [("SIGNED_OUT", None)]
    assert client.get_session() is None
    with pytest.raises(AuthApiError) as excinfo:
        client_for(server).refresh_session(signed_in.session.refresh_token)
    assert api_error(excinfo)[:2] == (400, "refresh_token_not_found")

    # After unsubscribe() the callback hears nothing more.
    subscription.unsubscribe()
    client.sign_in_with_password({"email": email, "password": PASSWORD})
    client.sign_out()
    assert [event for event, _ in seen] == ["SIGNED_IN", "TOKEN_REFRESHED", "USER_UPDATED", "SIGNED_IN", "SIGNED_OUT"]
