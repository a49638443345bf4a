"""Where a flow may send the browser: redirect_to checked against SITE_URL and the allow list."""

from __future__ import annotations

import ipaddress
import logging
import re
from functools import lru_cache
from urllib.parse import urlsplit

log = logging.getLogger("gotrue_lite.redirects")

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}


_NOT_SEPARATOR = "[^./]"


class _BadGlob(ValueError):
    pass


def _class(pattern: str, i: int) -> tuple[str, int]:
    """`[abc]`, `[!abc]`, `[a-z]`, `[!a-z]` from just after the `[`: one character, separators
    included (gobwas/glob's List and Range matchers know no separators)."""
    negate = pattern.startswith("!", i)
    i += negate
    if i + 2 < len(pattern) and pattern[i + 1] == "-":
        lo, hi = pattern[i], pattern[i + 2]
        i += 3
        body = f"{re.escape(lo)}-{re.escape(hi)}" if lo <= hi else None
    else:
        chars = []
        while i < len(pattern) and pattern[i] != "]":
            if pattern[i] == "\\":
                i += 1
                if i == len(pattern):
                    raise _BadGlob("trailing backslash")
            chars.append(pattern[i])
            i += 1
        if not chars:
            raise _BadGlob("empty character class")
        body = "".join(re.escape(c) for c in chars)
    if not pattern.startswith("]", i):
        raise _BadGlob("unclosed character class")
    if body is None:  # lo > hi: nothing is in the range
        return ("(?s:.)" if negate else "(?!)"), i + 1
    return f"[{'^' if negate else ''}{body}]", i + 1


def _sequence(pattern: str, i: int, in_terms: bool) -> tuple[str, int]:
    out = []
    while i < len(pattern):
        ch = pattern[i]
        if in_terms and ch in ",}":
            break
        if pattern.startswith("**", i):
            out.append("(?s:.*)")
            i += 2
        elif ch == "*":
            out.append(_NOT_SEPARATOR + "*")
            i += 1
        elif ch == "?":
            out.append(_NOT_SEPARATOR)
            i += 1
        elif ch == "[":
            part, i = _class(pattern, i + 1)
            out.append(part)
        elif ch == "{":
            alternatives = []
            i += 1
            while True:
                part, i = _sequence(pattern, i, True)
                alternatives.append(part)
                if pattern.startswith(",", i):
                    i += 1
                    continue
                if pattern.startswith("}", i):
                    i += 1
                    break
                raise _BadGlob("unclosed {")
            out.append("(?:" + "|".join(alternatives) + ")")
        else:
            if ch == "\\":
                i += 1
                if i == len(pattern):
                    raise _BadGlob("trailing backslash")
                ch = pattern[i]
            out.append(re.escape(ch))
            i += 1
    return "".join(out), i


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str] | None:
    """GOTRUE_URI_ALLOW_LIST globs as gobwas/glob compiles them with the separators `.` and `/`:
    `*` and `?` stay within a label or path segment, `**` crosses them, `[…]`/`[!…]` (one set or
    one range), `{a,b}` and `\\` escapes. None for a malformed pattern (upstream refuses to start)."""
    try:
        regex, _ = _sequence(pattern, 0, False)
        return re.compile(regex + r"\Z")
    except (_BadGlob, re.error) as exc:
        log.warning("GOTRUE_URI_ALLOW_LIST: ignoring the malformed pattern %r (%s)", pattern, exc)
        return None


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return -1


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_OPTIONAL_PORT = re.compile(r"(:[0-9]*)?")


def _go_refuses(candidate: str) -> bool:
    """What makes Go's url.Parse fail (so upstream refuses the URL) but urlsplit accept it:
    ASCII control characters anywhere, malformed %-escapes outside the query, and anything but
    `:digits` after the host (urlsplit reads "[::1].evil.example" as the host ::1)."""
    if _CONTROL.search(candidate):
        return True
    before_fragment, _, fragment = candidate.partition("#")
    before_query = before_fragment.split("?", 1)[0]
    if _BAD_ESCAPE.search(before_query) or _BAD_ESCAPE.search(fragment):
        return True
    try:
        host_port = urlsplit(candidate).netloc.rpartition("@")[2]
    except ValueError:
        return True
    if host_port.startswith("["):
        closing = host_port.find("]")
        return closing < 0 or not _OPTIONAL_PORT.fullmatch(host_port[closing + 1:])
    colon = host_port.rfind(":")
    return colon >= 0 and not _OPTIONAL_PORT.fullmatch(host_port[colon:])


def is_allowed(settings, candidate: str) -> bool:
    """Upstream's IsRedirectURLValid, in its order."""
    if not candidate or _go_refuses(candidate):
        return False
    try:
        target = urlsplit(candidate)
        site = urlsplit(settings.site_url)
    except ValueError:
        return False
    host = target.hostname or ""
    if target.scheme == site.scheme and host == (site.hostname or "") and (
        host in _LOCAL_HOSTS or _port(target) == _port(site)
    ):
        return True
    if host.isdigit():
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        # Go's IsLoopback sees an IPv4-mapped IPv6 address as the IPv4 address it carries.
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback
    if target.scheme in ("http", "https") and not _HOSTNAME.match(host):
        return False
    bare = candidate.split("#", 1)[0]
    return any((glob := _glob(pattern)) is not None and glob.match(bare)
               for pattern in settings.uri_allow_list if pattern)


def resolve(settings, requested: str | None, referer: str | None) -> str:
    """The request's redirect target: redirect_to if allowed, else Referer if allowed, else SITE_URL."""
    for candidate in (requested, referer):
        if candidate and is_allowed(settings, candidate):
            return candidate
    return settings.site_url
