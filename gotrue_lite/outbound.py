"""The one outgoing HTTP client: every call to a remote party (SMS vendor, captcha, provider) uses it."""

from __future__ import annotations

import ssl

import aiohttp

# Upstream gives remote parties 10 s in total (its default GOTRUE_*_TIMEOUT values); a peer that
# accepts the connection and then stalls must not hold a request longer than that.
TOTAL_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
# Bounded fan-out: a slow vendor cannot make the server open unbounded sockets.
MAX_CONNECTIONS = 100


def new_client(extra_ca_file: str = "") -> aiohttp.ClientSession:
    """A client session for the app's lifetime (created inside the running loop, closed at exit).

    Callers pass allow_redirects=False where the URL came from a user or a remote party's answer.
    `extra_ca_file` (GOTRUE_LITE_EXTRA_CA_FILE): PEM certificates trusted beside the system's,
    for an IdP behind a private CA (and the tests' local TLS issuer).
    """
    tls: ssl.SSLContext | bool = True
    if extra_ca_file:
        tls = ssl.create_default_context()
        tls.load_verify_locations(cafile=extra_ca_file)
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=tls),
        headers={"User-Agent": "gotrue-lite"},
    )
