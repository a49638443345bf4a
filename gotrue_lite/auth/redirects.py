"""Where a flow may send the browser: redirect_to checked against SITE_URL and the allow list."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    # `*` stays within one label or path segment, `**` crosses them (gobwas/glob with . and /).
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^./]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^./]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return -1


def is_allowed(settings, candidate: str) -> bool:
    """Upstream's IsRedirectURLValid, in its order."""
    if not candidate:
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
        return address.is_loopback
    if target.scheme in ("http", "https") and not _HOSTNAME.match(host):
        return False
    bare = candidate.split("#", 1)[0]
    return any(_glob(pattern).match(bare) for pattern in settings.uri_allow_list if pattern)


def resolve(settings, requested: str | None, referer: str | None) -> str:
    """The request's redirect target: redirect_to if allowed, else Referer if allowed, else SITE_URL."""
    for candidate in (requested, referer):
        if candidate and is_allowed(settings, candidate):
            return candidate
    return settings.site_url
