"""Read a launch as BinderHub's clients do: ``GET /build/...`` and its events up to the last."""

from __future__ import annotations

import json
from typing import Any

import httpx


def launch(url: str, headers: dict[str, str] | None = None) -> tuple[httpx.Headers, list[Any]]:
    """GET a build URL: its headers and events up to ``ready`` or ``failed``; the member
    holds the stream open after ``ready``, so reading stops there."""
    events = []
    with httpx.stream("GET", url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["phase"] in ("ready", "failed"):
                    break
    return response.headers, events
