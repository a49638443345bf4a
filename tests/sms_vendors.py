"""Local stand-ins for the SMS vendors: one small aiohttp app per vendor on 127.0.0.1 that speaks
the vendor's wire format (its paths, auth, form fields, answers and error documents).

Each fake checks what the real vendor checks (credentials, required fields, number format) and
answers as it would, records every message it accepted (`messages`, with the text and the code in
it), and can be told to answer with one of the vendor's error shapes (`fail("auth")`, see each
class's SHAPES) or to stall (`stall(seconds)`). `env()` gives the settings that point gotrue-lite
at it (GOTRUE_SMS_PROVIDER, the credentials, GOTRUE_LITE_SMS_API_URL).

From pytest: `sms_vendor("twilio")` (fixture, stopped after the test) or
`with running("vonage") as vendor:`.

    vendor = sms_vendor("twilio")
    server = make_server(backend, **vendor.env())
    ... POST /otp {"phone": "+15551234567"} ...
    code = vendor.last("15551234567").code
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple

import pytest
from aiohttp import web

from loopback import listen

_CODE = re.compile(r"(?<![0-9A-Za-z])(\d{4,10})(?![0-9A-Za-z])")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_DIGITS = re.compile(r"^[1-9][0-9]{1,14}$")


@dataclass
class Delivered:
    """One message the fake accepted."""

    vendor: str
    phone: str  # normalised: digits only
    text: str  # what the recipient reads ("" for a Twilio WhatsApp content template)
    channel: str  # sms | whatsapp
    fields: dict[str, str]  # the form exactly as posted
    headers: dict[str, str]
    otp: str | None = None  # the code the vendor itself generated (Twilio Verify)
    id: str = ""

    @property
    def code(self) -> str:
        """The one-time code the recipient got."""
        if self.otp:
            return self.otp
        variables = self.fields.get("ContentVariables")
        if variables:
            return json.loads(variables)["1"]
        found = _CODE.findall(self.text)
        assert len(found) == 1, f"no single code in {self.text!r}"
        return found[0]


class Request(NamedTuple):
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    raw: bytes  # the body exactly as sent


class FakeVendor:
    """The common part: the thread and loop, recording, failure switches."""

    name = ""
    SHAPES: tuple[str, ...] = ()

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # mounts the vendor's paths below this (a gateway's path)
        self.messages: list[Delivered] = []
        self.requests: list[Request] = []  # every request, accepted or not
        self._failure: str | None = None
        self._failures_left: int | None = None
        self._stall = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fake-{self.name}", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- control -------------------------------------------------------------------------

    def fail(self, shape: str | None, times: int | None = None) -> None:
        """Answer with error shape `shape` (one of SHAPES) from now on, or `times` times; None: succeed."""
        if shape is not None and shape not in self.SHAPES:
            raise ValueError(f"{self.name} has no error shape {shape!r} (known: {', '.join(self.SHAPES)})")
        self._failure, self._failures_left = shape, times

    def stall(self, seconds: float) -> None:
        """Accept requests, then say nothing for `seconds` before answering."""
        self._stall = seconds

    def env(self) -> dict[str, str]:
        return {"GOTRUE_SMS_PROVIDER": self.name, "GOTRUE_LITE_SMS_API_URL": self.url + self.prefix,
                **self.credentials()}

    def credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def to(self, phone: str) -> list[Delivered]:
        phone = phone.removeprefix("+").replace(" ", "")
        return [m for m in self.messages if m.phone == phone]

    def last(self, phone: str) -> Delivered:
        found = self.to(phone)
        assert found, f"{self.name}: no message to {phone} (got: {[m.phone for m in self.messages]})"
        return found[-1]

    # --- lifetime ------------------------------------------------------------------------

    def start(self) -> "FakeVendor":
        self._thread.start()
        app = web.Application()
        for method, path, handler in self.routes():
            app.router.add_route(method, self.prefix + path, self._wrap(handler))

        self._runner, port = listen(self._loop, app)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self._loop).result(10)  # stalled answers
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def routes(self) -> list[tuple[str, str, Callable]]:
        raise NotImplementedError

    def _wrap(self, handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            if self._stall:
                await asyncio.sleep(self._stall)
            raw = await request.read()
            form = {k: v for k, v in (await request.post()).items()}
            self.requests.append(Request(request.path, dict(request.headers), form, raw))
            failure = self._failure
            if failure is not None and self._failures_left is not None:
                self._failures_left -= 1
                if self._failures_left <= 0:
                    self._failure = self._failures_left = None
            return await handler(request, form, failure)
        return handle

    def _record(self, request: web.Request, form: dict[str, str], **kw: Any) -> Delivered:
        message = Delivered(vendor=self.name, fields=form, headers=dict(request.headers), **kw)
        self.messages.append(message)
        return message


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _is_form(request: web.Request) -> bool:
    return request.content_type == "application/x-www-form-urlencoded"


# --- Twilio (Programmable Messaging and Verify share the error document) ----------------------


def twilio_error(status: int, code: int, message: str) -> web.Response:
    # https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions
    return web.json_response({"code": code, "message": message,
                              "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
                             status=status)


def _twilio_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class FakeTwilio(FakeVendor):
    """POST /2010-04-01/Accounts/{AccountSid}/Messages.json (Basic auth AccountSid:AuthToken)."""

    name = "twilio"
    SHAPES = ("auth", "invalid_to", "rate_limited", "server_error", "failed", "undelivered", "html", "not_json")

    def __init__(self, account_sid: str = "AC" + "1" * 32, auth_token: str = "twilio-auth-token-0123",
                 sender: str = "MG" + "2" * 32, content_sid: str = "", prefix: str = "") -> None:
        super().__init__(prefix)
        self.account_sid, self.auth_token, self.sender, self.content_sid = account_sid, auth_token, sender, content_sid

    def credentials(self) -> dict[str, str]:
        env = {"GOTRUE_SMS_TWILIO_ACCOUNT_SID": self.account_sid, "GOTRUE_SMS_TWILIO_AUTH_TOKEN": self.auth_token,
               "GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID": self.sender}
        if self.content_sid:
            env["GOTRUE_SMS_TWILIO_CONTENT_SID"] = self.content_sid
        return env

    def routes(self):
        return [("POST", "/2010-04-01/Accounts/{account}/Messages.json", self.messages_json)]

    def _authorised(self, request: web.Request) -> bool:
        return (_basic_auth(request) == (self.account_sid, self.auth_token)
                and request.match_info.get("account", self.account_sid) == self.account_sid)

    async def messages_json(self, request: web.Request, form: dict[str, str], failure: str | None):
        if failure == "auth" or not self._authorised(request):
            return twilio_error(401, 20003, "Authenticate")
        if failure == "html":
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if failure == "not_json":
            return web.Response(status=201, text="queued", content_type="text/plain")
        if failure == "server_error":
            return twilio_error(500, 20500, "An internal server error has occurred")
        if failure == "rate_limited":
            return twilio_error(429, 20429, "Too Many Requests")
        if not _is_form(request):
            return twilio_error(400, 20001, "Unsupported content type")
        to, sender = form.get("To", ""), form.get("From", "")
        whatsapp = to.startswith("whatsapp:")
        number = to.removeprefix("whatsapp:")
        if failure == "invalid_to" or not _E164.match(number):
            return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if whatsapp and not (sender.startswith("whatsapp:") or sender.startswith("MG")):
            return twilio_error(400, 63007, "Twilio could not find a Channel with the specified From address")
        if not whatsapp and sender.startswith("whatsapp:"):
            return twilio_error(400, 21910, "Invalid From and To pair. From and To should be of the same channel")
        if "ContentSid" in form:
            if not form["ContentSid"].startswith("HX"):
                return twilio_error(400, 21656, "The ContentSid is Invalid.")
            try:
                json.loads(form.get("ContentVariables", "{}"))
            except ValueError:
                return twilio_error(400, 21656, "The ContentVariables Parameter is invalid.")
        elif not form.get("Body"):
            return twilio_error(400, 21602, "Message body is required.")
        sid = _twilio_sid("SM")
        status = "queued"
        error_code = error_message = None
        if failure in ("failed", "undelivered"):
            status, error_code, error_message = failure, "30008", "Unknown error"
        else:
            self._record(request, form, phone=number.removeprefix("+"), text=form.get("Body", ""),
                         channel="whatsapp" if whatsapp else "sms", id=sid)
        return web.json_response({
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": form.get("Body", ""),
            "from": sender, "to": to, "sid": sid, "status": status, "num_segments": "1",
            "error_code": error_code, "error_message": error_message, "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }, status=201)


class FakeTwilioVerify(FakeVendor):
    """POST /v2/Services/{ServiceSid}/Verifications and …/VerificationCheck: Twilio makes the
    code, sends it, and checks it."""

    name = "twilio_verify"
    SHAPES = ("auth", "invalid_to", "max_attempts", "not_found", "server_error", "html")
    TEXT = "Your verification code is: {code}"

    def __init__(self, account_sid: str = "AC" + "3" * 32, auth_token: str = "verify-auth-token-0123",
                 service_sid: str = "VA" + "4" * 32, prefix: str = "") -> None:
        super().__init__(prefix)
        self.account_sid, self.auth_token, self.service_sid = account_sid, auth_token, service_sid
        self.pending: dict[str, str] = {}  # "+number" -> code
        self.checks: list[tuple[str, str, str]] = []  # (To, Code, the status answered)

    def credentials(self) -> dict[str, str]:
        return {"GOTRUE_SMS_TWILIO_VERIFY_ACCOUNT_SID": self.account_sid,
                "GOTRUE_SMS_TWILIO_VERIFY_AUTH_TOKEN": self.auth_token,
                "GOTRUE_SMS_TWILIO_VERIFY_MESSAGE_SERVICE_SID": self.service_sid}

    def routes(self):
        return [("POST", "/v2/Services/{service}/Verifications", self.verifications),
                ("POST", "/v2/Services/{service}/VerificationCheck", self.verification_check)]

    def _refusal(self, request: web.Request, failure: str | None) -> web.Response | None:
        if failure == "auth" or _basic_auth(request) != (self.account_sid, self.auth_token):
            return twilio_error(401, 20003, "Authenticate")
        if request.match_info["service"] != self.service_sid:
            return twilio_error(404, 20404, f"The requested resource {request.path.split('/v2', 1)[1]} was not found")
        if failure == "html":
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if failure == "server_error":
            return twilio_error(500, 20500, "An internal server error has occurred")
        if not _is_form(request):
            return twilio_error(400, 20001, "Unsupported content type")
        return None

    def _body(self, to: str, channel: str, status: str, valid: bool, sid: str) -> dict:
        return {"sid": sid, "service_sid": self.service_sid, "account_sid": self.account_sid, "to": to,
                "channel": channel, "status": status, "valid": valid, "amount": None, "payee": None}

    async def verifications(self, request: web.Request, form: dict[str, str], failure: str | None):
        refusal = self._refusal(request, failure)
        if refusal is not None:
            return refusal
        to, channel = form.get("To", ""), form.get("Channel", "")
        if failure == "invalid_to" or not _E164.match(to):
            return twilio_error(400, 60200, f"Invalid parameter `To`: {to}")
        if channel not in ("sms", "whatsapp", "call", "email"):
            return twilio_error(400, 60200, "Invalid parameter `Channel`")
        if failure == "max_attempts":
            return twilio_error(429, 60203, "Max send attempts reached")
        code = "".join(secrets.choice("0123456789") for _ in range(6))
        self.pending[to] = code
        sid = _twilio_sid("VE")
        self._record(request, form, phone=to[1:], text=self.TEXT.format(code=code), channel=channel, otp=code, id=sid)
        return web.json_response(self._body(to, channel, "pending", False, sid), status=201)

    async def verification_check(self, request: web.Request, form: dict[str, str], failure: str | None):
        refusal = self._refusal(request, failure)
        if refusal is not None:
            return refusal
        to, code = form.get("To", ""), form.get("Code", "")
        if failure == "max_attempts":
            return twilio_error(429, 60202, "Max check attempts reached")
        if failure == "not_found" or to not in self.pending:
            # An expired, approved or never started verification is gone.
            self.checks.append((to, code, "404"))
            return twilio_error(404, 20404, f"The requested resource /Services/{self.service_sid}/VerificationCheck was not found")
        if not code:
            return twilio_error(400, 60200, "Invalid parameter: Code")
        approved = secrets.compare_digest(code, self.pending[to])
        if approved:
            del self.pending[to]
        status = "approved" if approved else "pending"
        self.checks.append((to, code, status))
        return web.json_response(self._body(to, "sms", status, approved, _twilio_sid("VE")))


# --- MessageBird ------------------------------------------------------------------------------


def messagebird_errors(status: int, *errors: tuple[int, str, str | None]) -> web.Response:
    # https://developers.messagebird.com/api/#errors
    return web.json_response({"errors": [{"code": c, "description": d, "parameter": p} for c, d, p in errors]},
                             status=status)


class FakeMessagebird(FakeVendor):
    """POST /messages with `Authorization: AccessKey <key>`."""

    name = "messagebird"
    SHAPES = ("auth", "no_recipients", "no_balance", "empty_errors", "not_sent", "server_error", "html")

    def __init__(self, access_key: str = "live_messagebird_key_0123", originator: str = "Acme",
                 prefix: str = "") -> None:
        super().__init__(prefix)
        self.access_key, self.originator = access_key, originator

    def credentials(self) -> dict[str, str]:
        return {"GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY": self.access_key,
                "GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR": self.originator}

    def routes(self):
        return [("POST", "/messages", self.messages_endpoint)]

    async def messages_endpoint(self, request: web.Request, form: dict[str, str], failure: str | None):
        if failure == "auth" or request.headers.get("Authorization") != f"AccessKey {self.access_key}":
            return messagebird_errors(401, (2, "Request not allowed (incorrect access_key)", "access_key"))
        if failure == "html":
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if failure == "server_error":
            # Upstream reads this as a message: no recipients sent.
            return messagebird_errors(500, (99, "Internal error", None))
        if failure == "empty_errors":
            return web.json_response({"errors": []}, status=422)
        if failure == "no_balance":
            return messagebird_errors(422, (25, "Not enough balance", None))
        recipients = form.get("recipients", "")
        if failure == "no_recipients" or not all(_DIGITS.match(r) for r in recipients.split(",")):
            return messagebird_errors(422, (9, "no (correct) recipients found", "recipients"))
        if not form.get("originator"):
            return messagebird_errors(422, (9, "originator is required", "originator"))
        if not form.get("body"):
            return messagebird_errors(422, (9, "body is required", "body"))
        if form.get("type", "sms") != "sms":
            return messagebird_errors(422, (10, "type is invalid", "type"))
        message_id = secrets.token_hex(16)
        sent = 0 if failure == "not_sent" else 1
        if sent:
            self._record(request, form, phone=recipients, text=form["body"], channel="sms", id=message_id)
        return web.json_response({
            "id": message_id, "href": f"https://rest.messagebird.com/messages/{message_id}", "direction": "mt",
            "type": "sms", "originator": form["originator"], "body": form["body"],
            "datacoding": form.get("datacoding", "plain"),
            "recipients": {"totalCount": 1, "totalSentCount": sent, "totalDeliveredCount": 0,
                           "totalDeliveryFailedCount": 0,
                           "items": [{"recipient": int(recipients), "status": "sent" if sent else "failed"}]},
        }, status=201)


# --- Textlocal --------------------------------------------------------------------------------


class FakeTextlocal(FakeVendor):
    """POST /send with the API key in the form; the answer is 200 whatever happened."""

    name = "textlocal"
    SHAPES = ("auth", "no_recipients", "template", "failure_with_message", "empty_errors", "html")

    def __init__(self, api_key: str = "textlocal-api-key-0123", sender: str = "ACMEIN", prefix: str = "") -> None:
        super().__init__(prefix)
        self.api_key, self.sender = api_key, sender

    def credentials(self) -> dict[str, str]:
        return {"GOTRUE_SMS_TEXTLOCAL_API_KEY": self.api_key, "GOTRUE_SMS_TEXTLOCAL_SENDER": self.sender}

    def routes(self):
        return [("POST", "/send", self.send)]

    @staticmethod
    def _error_answer(code: int, message: str, **extra: Any) -> web.Response:
        # https://api.textlocal.in/docs/sendsms: errors ride in a 200 answer.
        return web.json_response({"errors": [{"code": code, "message": message}], "status": "failure", **extra})

    async def send(self, request: web.Request, form: dict[str, str], failure: str | None):
        if failure == "html":
            return web.Response(status=503, text="<html><body>Service Unavailable</body></html>", content_type="text/html")
        if failure == "empty_errors":
            return web.json_response({"errors": [], "status": "failure"})
        if failure == "auth" or form.get("apikey") != self.api_key:
            return self._error_answer(3, "Invalid login details")
        numbers = form.get("numbers", "")
        if failure == "no_recipients" or not numbers:
            return self._error_answer(4, "No recipients specified")
        if not all(_DIGITS.match(n) for n in numbers.split(",")):
            return self._error_answer(51, "No valid numbers specified")
        if not form.get("message"):
            return self._error_answer(5, "No message content")
        if not form.get("sender"):
            return self._error_answer(44, "No sender name specified")
        if failure == "template":
            return self._error_answer(80, "Invalid template")
        message_id = str(secrets.randbelow(10**10))
        if failure == "failure_with_message":
            return self._error_answer(192, "You cannot send message at this time",
                                 messages=[{"id": message_id, "recipient": int(numbers)}])
        self._record(request, form, phone=numbers, text=form["message"], channel="sms", id=message_id)
        return web.json_response({
            "balance": 1162, "batch_id": 123456789, "cost": 1, "num_messages": 1,
            "message": {"num_parts": 1, "sender": form["sender"], "content": form["message"]},
            "receipt_url": "", "custom": "", "messages": [{"id": message_id, "recipient": int(numbers)}],
            "status": "success",
        })


# --- Vonage -----------------------------------------------------------------------------------


class FakeVonage(FakeVendor):
    """POST /sms/json with api_key and api_secret in the form; 200 whatever happened, each
    message's `status` ("0" = sent) tells."""

    name = "vonage"
    SHAPES = ("auth", "throttled", "invalid_number", "empty", "html")

    def __init__(self, api_key: str = "a1b2c3d4", api_secret: str = "vonage-secret-0123", sender: str = "Acme",
                 prefix: str = "") -> None:
        super().__init__(prefix)
        self.api_key, self.api_secret, self.sender = api_key, api_secret, sender

    def credentials(self) -> dict[str, str]:
        return {"GOTRUE_SMS_VONAGE_API_KEY": self.api_key, "GOTRUE_SMS_VONAGE_API_SECRET": self.api_secret,
                "GOTRUE_SMS_VONAGE_FROM": self.sender}

    def routes(self):
        return [("POST", "/sms/json", self.sms_json)]

    @staticmethod
    def _refused(status: str, text: str) -> web.Response:
        # https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms#sms-api-error-codes
        return web.json_response({"message-count": "1", "messages": [{"status": status, "error-text": text}]})

    async def sms_json(self, request: web.Request, form: dict[str, str], failure: str | None):
        if failure == "html":
            return web.Response(status=500, text="<html><body>Internal Server Error</body></html>", content_type="text/html")
        if failure == "empty":
            return web.json_response({"message-count": "0", "messages": []})
        if failure == "auth" or (form.get("api_key"), form.get("api_secret")) != (self.api_key, self.api_secret):
            return self._refused("4", "Bad Credentials")
        if failure == "throttled":
            return self._refused("1", "Throttled")
        for name in ("from", "to", "text"):
            if not form.get(name):
                return self._refused("2", f"Missing {name} param")
        if failure == "invalid_number" or not _DIGITS.match(form["to"]):
            return self._refused("3", "Invalid to param")
        if not form["text"].isascii() and form.get("type") != "unicode":
            # Vonage would send it as GSM-7 and the recipient would read '?'s; say so loudly.
            return self._refused("3", "Invalid Message type: non-ASCII text needs type=unicode")
        message_id = secrets.token_hex(8).upper()
        self._record(request, form, phone=form["to"], text=form["text"], channel="sms", id=message_id)
        return web.json_response({"message-count": "1", "messages": [{
            "to": form["to"], "message-id": message_id, "status": "0", "remaining-balance": "3.14159265",
            "message-price": "0.03330000", "network": "12345"}]})


FAKES: dict[str, type[FakeVendor]] = {
    "twilio": FakeTwilio, "twilio_verify": FakeTwilioVerify, "messagebird": FakeMessagebird,
    "textlocal": FakeTextlocal, "vonage": FakeVonage,
}


@contextlib.contextmanager
def running(vendor: str, **options: Any) -> Iterator[FakeVendor]:
    fake = FAKES[vendor](**options).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def sms_vendor() -> Iterator[Callable[..., FakeVendor]]:
    """Factory: sms_vendor("twilio", **credentials) -> a running fake, stopped after the test."""
    fakes: list[FakeVendor] = []

    def start(vendor: str, **options: Any) -> FakeVendor:
        fake = FAKES[vendor](**options).start()
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        fake.stop()
