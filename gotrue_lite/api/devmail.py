"""GET /_dev/mail (JSON) and /_dev/mail/ (HTML): the development mailbox and SMS outbox, 404 while off."""

from __future__ import annotations

from html import escape

from aiohttp import web

from ..mail import MAILER, Mailer
from .middleware import error_response

MAX_LIMIT = 500


def _mailer(request: web.Request) -> Mailer | None:
    mailer = request.app.get(MAILER)
    return mailer if mailer is not None and mailer.dev_mailbox else None


async def _messages(request: web.Request, mailer: Mailer) -> list[dict]:
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), MAX_LIMIT)
    except ValueError:
        limit = 100
    return await mailer.dev_messages(email=request.query.get("email") or None, limit=limit,
                                     phone=request.query.get("phone") or None)


async def list_json(request: web.Request) -> web.StreamResponse:
    mailer = _mailer(request)
    if mailer is None:
        return error_response(request, 404, "not_found", "Not Found")
    messages = await _messages(request, mailer)
    for message in messages:
        message["created_at"] = message["created_at"].isoformat()
    # Never cached: the links in here sign people in.
    return web.json_response({"messages": messages}, headers={"Cache-Control": "no-store"})


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111827; }
article { border: 1px solid #d1d5db; border-radius: 8px; padding: 1rem 1.25rem; margin: 0 0 1.25rem; }
h2 { font-size: 1.1rem; margin: 0 0 .25rem; }
.meta { color: #4b5563; font-size: .9rem; margin: 0 0 .75rem; }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; letter-spacing: .05em;
         border-radius: 4px; padding: .1rem .4rem; margin-right: .5rem; vertical-align: middle;
         background: #e0e7ff; color: #3730a3; }
.badge.sms, .badge.whatsapp { background: #dcfce7; color: #166534; }
.code { font-size: 1rem; margin: .25rem 0 .75rem; }
.code output { font: 600 1.5rem ui-monospace, monospace; letter-spacing: .15em; user-select: all;
               background: #f3f4f6; border-radius: 6px; padding: .15rem .5rem; }
ul { padding-left: 1.25rem; } li { word-break: break-all; margin: .25rem 0; }
pre { white-space: pre-wrap; background: #f9fafb; padding: .75rem; border-radius: 6px; }
iframe { width: 100%; height: 420px; border: 1px solid #e5e7eb; border-radius: 6px; }
"""

_CHANNEL_NAMES = {"email": "Mail", "sms": "SMS", "whatsapp": "WhatsApp"}


def _code(message: dict) -> str:
    # The code first: it is what the developer came for (the mail's text is collapsed below).
    if not message["code"]:
        return ""
    return f'<p class="code">Code <output>{escape(message["code"])}</output></p>'


def _article(message: dict) -> str:
    channel = message["channel"]
    badge = f'<span class="badge {escape(channel)}">{escape(_CHANNEL_NAMES.get(channel, channel))}</span>'
    when = escape(message["created_at"].isoformat(timespec="seconds"))
    if channel != "email":
        return (
            f'<article class="sms"><h2>{badge}To +{escape(message["to"])}</h2>'
            f'<p class="meta">{escape(channel)} message at {when}</p>'
            f"{_code(message)}<pre>{escape(message['text'])}</pre></article>"
        )
    links = "".join(f'<li><a href="{escape(link)}">{escape(link)}</a></li>' for link in message["links"])
    return (
        '<article class="mail">'
        f"<h2>{badge}{escape(message['subject'])}</h2>"
        f"<p class=\"meta\">{escape(message['kind'])} to {escape(message['to'])} at {when}</p>"
        f"{_code(message)}"
        f"{f'<ul>{links}</ul>' if links else '<p>No links in this message.</p>'}"
        "<details><summary>Text</summary>"
        f"<pre>{escape(message['text'])}</pre></details>"
        # The HTML part in a fully sandboxed frame: shown, but nothing in it can run.
        "<details><summary>HTML</summary>"
        f"<iframe sandbox=\"\" srcdoc=\"{escape(message['html'])}\" title=\"HTML part\"></iframe></details>"
        "</article>"
    )


async def page(request: web.Request) -> web.StreamResponse:
    mailer = _mailer(request)
    if mailer is None:
        return error_response(request, 404, "not_found", "Not Found")
    messages = await _messages(request, mailer)
    recipient = request.query.get("email") or request.query.get("phone") or ""
    heading = f"Dev mailbox: messages to {escape(recipient)}" if recipient else "Dev mailbox"
    body = "".join(_article(m) for m in messages) or "<p>No mail or SMS yet.</p>"
    html = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{heading}</h1><p>{len(messages)} message(s), newest first. "
        "Reload the page to see new mail and SMS; the same as JSON: GET /_dev/mail "
        "(?email=… or ?phone=… for one recipient).</p>"
        f"{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", headers={
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; "
                                   "frame-src 'self'; base-uri 'none'; form-action 'none'",
    })
