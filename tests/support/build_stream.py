"""Read a launch as BinderHub's clients do: ``GET /build/...`` and its events up to the last."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx


def launch(
    url: str, headers: dict[str, str] | None = None, client: httpx.Client | None = None
) -> tuple[httpx.Headers, list[Any]]:
    """GET a build URL: its headers and events up to ``ready`` or ``failed``; the member
    holds the stream open after ``ready``, so reading stops there. Through ``client`` when
    given (a loop of launches keeps its connections), else on a connection of its own."""
    events = []
    opened = (
        httpx.stream("GET", url, headers=headers, timeout=10)
        if client is None
        else client.stream("GET", url, headers=headers)
    )
    with opened as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["phase"] in ("ready", "failed"):
                    break
    return response.headers, events


def last_phase(url: str, client: httpx.Client | None = None) -> str:
    """The phase a launch ended on (``ready``, ``failed``; ``?`` for a stream with no event)."""
    _, events = launch(url, client=client)
    return str(events[-1]["phase"]) if events else "?"


def routed_launch(client: httpx.Client, router: str, path: str) -> tuple[float, str, str]:
    """A launch through a router, as a browser makes it: the router's 307, then the event
    stream of the member it names. When it was routed (monotonic clock), the member's base
    URL, and the phase the launch ended on."""
    routed = client.get(f"{router}{path}")
    at = time.monotonic()
    location = routed.headers["location"]
    return at, location.split("/build/")[0], last_phase(location, client)
