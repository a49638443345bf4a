"""Confirmation links (SESSIONS.md §8.3) and reading links and plain text out of mail HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote_plus, urljoin, urlsplit, urlunsplit

# Mail kind (or verify type) -> the MAILER_URLPATHS_* field its link uses; magic links share
# the recovery path upstream.
_URLPATH = {
    "invite": "invite",
    "confirmation": "confirmation", "signup": "confirmation",
    "recovery": "recovery", "magic_link": "recovery", "magiclink": "recovery",
    "email_change": "email_change",
}


def _redirect_param(redirect_to: str) -> str:
    # Upstream's rule: a value holding & = or # was not escaped by the caller, so escape it;
    # anything else is taken to be escaped already and goes in verbatim.
    if any(c in redirect_to for c in "&=#"):
        return quote_plus(redirect_to, safe="")
    return redirect_to


def action_link(settings, kind: str, token: str, verify_type: str, redirect_to: str,
                *, base_url: str | None = None) -> str:
    """The ConfirmationURL of a mail: URLPATHS_<kind> resolved against API_EXTERNAL_URL (or
    `base_url`, for a host from MAILER_EXTERNAL_HOSTS), with token, type and redirect_to."""
    try:
        field = _URLPATH[kind]
    except KeyError:
        raise ValueError(f"no confirmation link for mail kind {kind!r}") from None
    ref = urlsplit(getattr(settings.mailer.urlpaths, field))
    # RFC 3986 resolution (urljoin): an absolute path replaces the base path. The query is
    # ours alone, so the reference's own query is dropped; its fragment survives, as in Go.
    joined = urlsplit(urljoin(base_url or settings.api.external_url,
                              urlunsplit((ref.scheme, ref.netloc, ref.path, "", ""))))
    query = (f"token={quote_plus(token, safe='')}&type={quote_plus(verify_type, safe='')}"
             f"&redirect_to={_redirect_param(redirect_to)}")
    return urlunsplit((joined.scheme, joined.netloc, joined.path, query, ref.fragment))


_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"')\]]+")
_BLOCKS = {"p", "div", "br", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
           "hr", "blockquote", "pre", "section", "article", "header", "footer"}
_HIDDEN = {"head", "style", "script", "title", "template"}


class _Reader(HTMLParser):
    """Collects hrefs and a plain-text rendering of an HTML mail body."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.parts: list[str] = []
        self._hidden = 0
        self._anchors: list[tuple[str, int]] = []  # (href, index in parts where its label starts)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCKS:
            self.parts.append("\n" if tag in ("br", "tr") else "\n\n")
        if tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            if href:
                self.links.append(href)
            self._anchors.append((href, len(self.parts)))

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS and tag not in ("br", "li"):
            self.parts.append("\n\n")
        if tag == "a" and self._anchors:
            href, start = self._anchors.pop()
            label = " ".join("".join(self.parts[start:]).split())
            if href and href.lower().startswith(("http:", "https:")) and href != label:
                # Keep the address readable in the text part: "label (address)".
                self.parts.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def _read(html: str) -> _Reader:
    reader = _Reader()
    try:
        reader.feed(html)
        reader.close()
    except Exception:  # noqa: BLE001 - malformed markup: keep what was read
        pass
    return reader


def html_to_text(html: str) -> str:
    """A plain-text alternative for an HTML body (custom templates come as HTML only)."""
    text = "".join(_read(html).parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def extract_links(html: str, text: str = "") -> list[str]:
    """The http(s) links of a mail, hrefs first, each once, in order of appearance."""
    found = [link for link in _read(html).links if link.lower().startswith(("http:", "https:"))]
    found += _URL_IN_TEXT.findall(text)
    return list(dict.fromkeys(found))
