"""GET /_dev/welcome: where mailed links land while SITE_URL is the development default."""

from __future__ import annotations

import secrets

from aiohttp import web

from ..config import dev_welcome_url
from .middleware import CTX, error_response


def serves_welcome(settings) -> bool:
    """On with the dev mailbox while SITE_URL is its default; a SITE_URL the user sets (their
    own app) turns it off."""
    return settings.lite.dev_mailbox and settings.site_url == dev_welcome_url(settings.api.external_url)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111827; max-width: 60rem; }
section { border: 1px solid #d1d5db; border-radius: 8px; padding: 1rem 1.25rem; margin: 0 0 1.25rem; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
table { border-collapse: collapse; } td, th { text-align: left; padding: .2rem .75rem .2rem 0; vertical-align: top; }
td { word-break: break-all; font-family: ui-monospace, monospace; font-size: .9rem; }
.who { font-size: 1.25rem; } .error { border-color: #fca5a5; background: #fef2f2; }
.note { color: #4b5563; font-size: .9rem; }
"""

# Everything the page shows is built with textContent: the fragment and the token are input.
_SCRIPT = """
"use strict";
const main = document.getElementById("result");

function section(id, title, className) {
  const box = document.createElement("section");
  box.id = id;
  if (className) box.className = className;
  const heading = document.createElement("h2");
  heading.textContent = title;
  box.appendChild(heading);
  main.appendChild(box);
  return box;
}

function paragraph(box, text, className) {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  box.appendChild(p);
  return p;
}

function table(box, rows) {
  const t = document.createElement("table");
  for (const [key, value] of rows) {
    const tr = t.insertRow();
    const th = document.createElement("th");
    th.textContent = key;
    tr.appendChild(th);
    tr.insertCell().textContent = value;
  }
  box.appendChild(t);
}

function claimsOf(token) {
  const part = token.split(".")[1] || "";
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function shown(key, value) {
  if ((key === "exp" || key === "iat") && typeof value === "number") {
    return `${value} (${new Date(value * 1000).toISOString()})`;
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

async function signedIn(fragment) {
  const token = fragment.get("access_token");
  let claims = null;
  try {
    claims = claimsOf(token);
  } catch (e) {
    paragraph(section("error", "Unreadable token", "error"), "The access token in the link is not a JWT.");
    return;
  }
  const who = section("signed-in", "Signed in");
  const line = paragraph(who, `Signed in as ${claims.email || claims.phone || claims.sub}`, "who");
  line.id = "who";
  const kind = fragment.get("type");
  paragraph(who, kind ? `The ${kind} link worked.` : "The link worked.");
  table(section("claims", "Access token claims"), Object.entries(claims).map(([k, v]) => [k, shown(k, v)]));
  const session = [["expires_in", fragment.get("expires_in")], ["token_type", fragment.get("token_type")],
                   ["refresh_token", fragment.get("refresh_token")]].filter(([, v]) => v !== null);
  if (session.length) table(section("session", "Session"), session);

  const check = section("user", "GET /user with this token");
  try {
    const resp = await fetch(new URL("../user", location.href), {headers: {Authorization: `Bearer ${token}`}});
    const body = await resp.json();
    if (resp.ok) {
      table(check, [["status", String(resp.status)], ["id", body.id], ["email", body.email || ""],
                    ["email_confirmed_at", body.email_confirmed_at || ""],
                    ["user_metadata", JSON.stringify(body.user_metadata || {})]]);
    } else {
      check.className = "error";
      paragraph(check, `${resp.status}: ${body.msg || body.message || JSON.stringify(body)}`);
    }
  } catch (e) {
    check.className = "error";
    paragraph(check, `The server did not answer: ${e}`);
  }
}

function codeArrived(code) {
  const box = section("code", "A PKCE code arrived");
  paragraph(box, `Authorization code: ${code}`);
  paragraph(box, "Only the app that started this sign-in holds the code verifier, so the code cannot be " +
                 "exchanged here: pass it to that app (supabase.auth.exchangeCodeForSession(code)), or " +
                 "POST /token?grant_type=pkce with {auth_code, code_verifier}.", "note");
}

function failed(params) {
  const box = section("error", "The link did not sign anyone in", "error");
  table(box, [["error", params.get("error") || ""], ["error_code", params.get("error_code") || ""],
              ["error_description", params.get("error_description") || ""]]);
}

const fragment = new URLSearchParams(location.hash.slice(1));
const query = new URLSearchParams(location.search);
if (fragment.get("access_token")) {
  // Out of the address bar (and so out of history and screenshots) once read.
  history.replaceState(null, "", location.pathname + location.search);
  signedIn(fragment).finally(() => { document.body.dataset.ready = "1"; });
} else {
  if (fragment.get("error") || query.get("error")) failed(fragment.get("error") ? fragment : query);
  else if (query.get("code")) codeArrived(query.get("code"));
  else {
    const box = section("empty", "Nobody signed in yet");
    paragraph(box, "Sign up, then open the link from the development mailbox (/_dev/mail/): it lands here.");
  }
  document.body.dataset.ready = "1";
}
"""


async def page(request: web.Request) -> web.StreamResponse:
    if not serves_welcome(request.app[CTX].settings):
        return error_response(request, 404, "not_found", "Not Found")
    nonce = secrets.token_urlsafe(16)
    html = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>gotrue-lite: welcome</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>gotrue-lite development welcome page</h1>"
        "<p class=\"note\">Mailed links land here because GOTRUE_SITE_URL is not set (the development "
        "default while mail goes to the dev mailbox). Set GOTRUE_SITE_URL to your app to land there instead.</p>"
        "<main id=\"result\"><noscript>This page reads the link's #access_token with JavaScript."
        "</noscript></main>"
        f"<script nonce=\"{nonce}\">{_SCRIPT}</script></body></html>"
    )
    return web.Response(text=html, content_type="text/html", headers={
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
                                   "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    })
