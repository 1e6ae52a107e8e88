"""The URLs and paths a config may give: a member's endpoints, a fixed redirect's path and
target. Each rule raises ``ValueError`` saying what is wrong, which pydantic reports
under the setting's key (:mod:`shared.config`)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

#: Paths the router answers itself; a fixed redirect cannot take them.
ROUTER_PATHS = frozenset(
    {
        "/health",
        "/livez",
        "/active_hosts",
        "/status",
        "/status.json",
        "/history.json",
        "/why",
        "/metrics",
    }
)


def http_url(value: str) -> str:
    """A member's URL or one of its endpoints: http(s) with a host; no query, fragment, user
    info or spaces."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"must not carry a query, fragment or user info, got {value!r}")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def redirect_url(value: str) -> str:
    """Where a fixed redirect sends: an absolute http(s) URL a Location header can carry."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise ValueError("must be printable ASCII without spaces")
    return value


def redirect_paths(value: object) -> object:
    """The ``redirects`` mapping with every path checked (not the router's own, no query),
    ``PATH: URL`` read as short for ``PATH: {url: URL}`` (status 301)."""
    if not isinstance(value, Mapping):
        return value
    for path in value:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"redirects: path {path!r} must start with /")
        if any(ord(c) < 0x21 or ord(c) > 0x7E for c in path) or "?" in path:
            raise ValueError(f"redirects: path {path!r} must be printable ASCII, no query")
        if path.startswith("/build/") or path in ROUTER_PATHS:
            raise ValueError(f"redirects: path {path!r} is the router's own")
    return {
        path: {"url": entry} if isinstance(entry, str) else entry for path, entry in value.items()
    }
