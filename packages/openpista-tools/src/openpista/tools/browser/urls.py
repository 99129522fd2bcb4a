"""Which addresses the browser tools open, and how a bare `host/path` becomes a URL.

The agent can be driven from remote chat channels, so the browser must not become a way to
read this machine: `file:`, `chrome:`, `view-source:`, `javascript:` and the like are refused.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from openpista.core.errors import ToolError

ALLOWED = "http://, https://, data: and about:blank"
"""What browser.navigate opens, as error messages name it."""

_SCHEMES_TO_OPEN = ("http", "https", "data")
_SCHEMES_TO_STAY_ON = (*_SCHEMES_TO_OPEN, "about", "blob", "chrome-error")
"""Where a page may take itself: `blob:` pages it made, Chromium's own error page."""

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$", re.DOTALL)
_LOCAL_NAMES = ("localhost",)


def page_url(text: str) -> str:
    """The URL browser.navigate opens for `text`; a ToolError naming the allowed schemes for
    anything else. Without a scheme, http:// is assumed for local and private hosts (a dev
    server on 127.0.0.1:8000 rarely speaks TLS) and https:// for the rest."""
    url = text.strip()
    if not url:
        raise ToolError("browser.navigate needs `url`: the address to open")
    scheme = _scheme_of(url)
    if scheme is None:
        return f"{'http' if _is_local(url) else 'https'}://{url}"
    if scheme in _SCHEMES_TO_OPEN or url.lower() == "about:blank":
        return url
    raise ToolError(
        f"browser.navigate does not open {scheme}: addresses ({_clip(url)}); it opens only "
        f"{ALLOWED}"
    )


def may_stay_on(url: str) -> bool:
    """Whether a page may be left showing `url` after it navigated there by itself."""
    scheme = _scheme_of(url)
    return scheme is None or scheme in _SCHEMES_TO_STAY_ON


def _scheme_of(url: str) -> str | None:
    """The scheme, lower-cased; None for `host:port/...` and plain `host/...`."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = match.group(2)
    if not rest.startswith("//") and rest[:1].isdigit():
        return None  # `localhost:8000/form`: a port, not a scheme
    return match.group(1).lower()


def _is_local(url: str) -> bool:
    host = urlsplit(f"//{url}").hostname or ""
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def _clip(url: str) -> str:
    return url if len(url) <= 80 else url[:79] + "…"
