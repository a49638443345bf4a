"""The admin API: /admin/users (+ factors), /admin/generate_link and /admin/audit."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from aiohttp import web

from ..auth import admin, fields, redirects
from ..auth.admin import Actor, Attributes
from ..errors import validation
from .middleware import authenticate_admin, client, ctx_of, redirect_target
from .params import Params, json_body

DEFAULT_PER_PAGE = 50
_UINT = re.compile(r"[0-9]+")
_MAX_UINT64 = 2 ** 64 - 1


async def _admin(request: web.Request) -> tuple[Actor, dict[str, Any]]:
    user, claims = await authenticate_admin(request)
    return Actor(user, str(claims.get("role") or "")), claims


# --- pagination (upstream paginate / addPaginationHeaders) ---------------------------------

def _uint(value: str, default: int) -> int:
    """strconv.ParseUint(value, 10, 64), with its error text; "" means the default."""
    if value == "":
        return default
    if not _UINT.fullmatch(value):
        problem = "invalid syntax"
    elif int(value) > _MAX_UINT64:
        problem = "value out of range"
    else:
        return int(value)
    raise validation(f"Bad Pagination Parameters: strconv.ParseUint: parsing {fields.go_quote(value)}: {problem}")


def _pagination(request: web.Request) -> tuple[int, int]:
    page = _uint(request.query.get("page", ""), 1)
    per_page = _uint(request.query.get("per_page", ""), DEFAULT_PER_PAGE)
    if per_page == 0:
        # Upstream divides by it and answers 500.
        raise validation("Bad Pagination Parameters: per_page must be greater than 0")
    return max(page, 1), per_page


def _page_url(request: web.Request, pairs: list[tuple[str, str]], page: int) -> str:
    # Go's url.Values.Encode: keys sorted, each key's values in their original order.
    values = sorted([(k, v) for k, v in pairs if k != "page"] + [("page", str(page))], key=lambda kv: kv[0])
    query = "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in values)
    return f"<{request.rel_url.raw_path}?{query}>"


def _pagination_headers(request: web.Request, page: int, per_page: int, total: int) -> dict[str, str]:
    """Link (next, last) and X-Total-Count, laid out exactly as upstream: auth-js parses it naïvely."""
    last = -(-total // per_page)
    pairs = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
    link = ""
    if last > page:
        link += _page_url(request, pairs, page + 1) + '; rel="next", '
    link += _page_url(request, pairs, last) + '; rel="last"'
    return {"Link": link, "X-Total-Count": str(total)}


def _descending(request: web.Request) -> bool:
    """sort=created_at [asc|desc] (upstream's only sortable field); the first value decides."""
    directions = []
    for value in request.query.getall("sort", []):
        field, space, direction = value.partition(" ")
        if field != "created_at":
            raise validation(f"Bad Sort Parameters: bad field for sort '{field}'")
        if space and direction.upper() not in ("ASC", "DESC"):
            raise validation(f"Bad Sort Parameters: bad direction for sort '{direction}', "
                             "only 'asc' and 'desc' allowed")
        directions.append(direction.upper() != "ASC")
    return directions[0] if directions else True


# --- users ---------------------------------------------------------------------------------

def _attributes(body: Params, *, creating: bool) -> Attributes:
    # netlify's gotrue-js says `confirm` and `data` where the Supabase clients say
    # `email_confirm` and `user_metadata`.
    email_confirm = body.boolean("email_confirm") if "email_confirm" in body else body.boolean("confirm")
    user_metadata = body.obj("user_metadata") if "user_metadata" in body else body.obj("data")
    return Attributes(
        email=body.text("email"),
        phone=body.text("phone"),
        password=body.opt_text("password"),
        password_hash=body.text("password_hash") if creating else "",
        email_confirm=bool(email_confirm),
        phone_confirm=bool(body.boolean("phone_confirm")),
        user_metadata=user_metadata,
        app_metadata=body.obj("app_metadata"),
        role=body.text("role"),
        ban_duration=body.text("ban_duration"),
        id=body.text("id") if creating else "",
        aud=body.text("aud") if creating else "",
    )


async def get_users(request: web.Request) -> web.Response:
    _actor, claims = await _admin(request)
    descending = _descending(request)
    page, per_page = _pagination(request)
    aud = client(request, claims).aud
    users, total = await admin.list_users(ctx_of(request), aud, needle=request.query.get("filter", ""),
                                          email=request.query.get("email", ""),
                                          descending=descending, page=page, per_page=per_page)
    return web.json_response({"users": users, "aud": aud},
                             headers=_pagination_headers(request, page, per_page, total))


async def post_users(request: web.Request) -> web.Response:
    actor, claims = await _admin(request)
    body = await json_body(request)
    user = await admin.create_user(ctx_of(request), client(request, claims), actor, _attributes(body, creating=True))
    return web.json_response(user)


async def get_user(request: web.Request) -> web.Response:
    await _admin(request)
    user = await admin.load_user(ctx_of(request), request.match_info["user_id"])
    return web.json_response(user.to_json())


async def put_user(request: web.Request) -> web.Response:
    actor, _claims = await _admin(request)
    ctx = ctx_of(request)
    user = await admin.load_user(ctx, request.match_info["user_id"])
    body = await json_body(request)
    return web.json_response(await admin.update_user(ctx, actor, user, _attributes(body, creating=False)))


async def delete_user(request: web.Request) -> web.Response:
    actor, _claims = await _admin(request)
    ctx = ctx_of(request)
    user = await admin.load_user(ctx, request.match_info["user_id"])
    # The body is optional (auth-js v1 sends {}, older callers nothing at all).
    body = await json_body(request, required=False)
    await admin.delete_user(ctx, actor, user, soft=bool(body.boolean("should_soft_delete", False)))
    return web.json_response({})


async def get_factors(request: web.Request) -> web.Response:
    await _admin(request)
    user = await admin.load_user(ctx_of(request), request.match_info["user_id"])
    return web.json_response([f.to_json() for f in user.factors])


async def delete_factor(request: web.Request) -> web.Response:
    _actor, claims = await _admin(request)
    ctx = ctx_of(request)
    user = await admin.load_user(ctx, request.match_info["user_id"])
    return web.json_response(await admin.delete_factor(ctx, client(request, claims), user,
                                                       request.match_info["factor_id"]))


async def put_factor(request: web.Request) -> web.Response:
    actor, _claims = await _admin(request)
    ctx = ctx_of(request)
    user = await admin.load_user(ctx, request.match_info["user_id"])
    body = await json_body(request)
    return web.json_response(await admin.update_factor(ctx, actor, user, request.match_info["factor_id"],
                                                       friendly_name=body.text("friendly_name"),
                                                       phone=body.text("phone")))


# --- links and audit -----------------------------------------------------------------------

async def post_generate_link(request: web.Request) -> web.Response:
    actor, claims = await _admin(request)
    ctx = ctx_of(request)
    body = await json_body(request)
    # The body's redirect_to (auth-js v1 puts it there) wins when allowed; else the usual chain.
    target = redirect_target(request)
    requested = body.text("redirect_to")
    if requested and redirects.is_allowed(ctx.settings, requested):
        target = requested
    result = await admin.generate_link(
        ctx, client(request, claims), actor, link_type=body.text("type"), email=body.text("email"),
        new_email=body.text("new_email"), password=body.text("password"), data=body.obj("data"), redirect_to=target,
    )
    return web.json_response(result)


async def get_audit(request: web.Request) -> web.Response:
    await _admin(request)
    page, per_page = _pagination(request)
    entries, total = await admin.list_audit(ctx_of(request), request.query.get("query", ""), page=page,
                                            per_page=per_page)
    return web.json_response(entries, headers=_pagination_headers(request, page, per_page, total))


ROUTES = [
    ("GET", "/admin/users", get_users),
    ("POST", "/admin/users", post_users),
    ("GET", "/admin/users/{user_id}", get_user),
    ("PUT", "/admin/users/{user_id}", put_user),
    ("DELETE", "/admin/users/{user_id}", delete_user),
    ("GET", "/admin/users/{user_id}/factors", get_factors),
    ("PUT", "/admin/users/{user_id}/factors/{factor_id}", put_factor),
    ("DELETE", "/admin/users/{user_id}/factors/{factor_id}", delete_factor),
    ("POST", "/admin/generate_link", post_generate_link),
    ("GET", "/admin/audit", get_audit),
]
