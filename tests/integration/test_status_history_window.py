"""/status's history read on a real Redis: each strip's state at the window start comes from
its last change before the window, found by scanning the stream backwards."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from router import timeline as reader
from shared.store import Store, connect
from tests.support.events import gate_suspended, reference_changed, state_changed


def _changed(member: str, new: str, at: float) -> dict[str, Any]:
    return state_changed(member, at, None, new, f"{member} is {new}")


def test_the_state_before_the_window_is_found_backwards(
    redis_url: str, key_prefix: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(reader, "_PAGE", 3)  # several pages of the backward scan
    now = time.time()
    events = [
        # The oldest change of all, so only a scan that looks for the gate reaches it.
        gate_suspended(now - 11, "reference version is stale"),
        _changed("a", "eligible", now - 10),
        _changed("b", "eligible", now - 9),
        reference_changed(now - 9, None, {"binderhub": "1"}, "prime a"),
        *({"event": "observation", "member": "a", "at": now - 8, "record": {}} for _ in range(7)),
        _changed("a", "full", now - 5),
        *({"event": "observation", "member": "b", "at": now - 4, "record": {}} for _ in range(7)),
    ]

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        store = Store(connect(redis_url), key_prefix)
        try:
            await store.append_history(events, 1000)
            # A window that starts after all of it: every state is from before the window.
            after = await reader.window_timeline(store, "1h", ["a", "b", "c"], now + 7200)
            # A window that holds all of it, read forwards a page of 3 at a time.
            around = await reader.window_timeline(store, "1h", ["a", "b", "c"], now + 1)
            # Members whose last changes are all found before the gate's (c never is).
            known = await reader.window_timeline(store, "1h", ["a", "b"], now + 7200)
            return after, around, known
        finally:
            await store.client.aclose()

    doc, around, known = asyncio.run(scenario())
    assert [(s["state"], s["start"]) for s in around["members"]["a"]["segments"]] == [
        ("no_history", now + 1 - 3600),
        ("eligible", now - 10),
        ("full", now - 5),
    ]
    assert around["available_since"] == now - 11
    assert doc["error"] is None
    assert [(s["state"], s["reason"]) for s in doc["members"]["a"]["segments"]] == [
        ("full", "a is full")
    ]
    assert [s["state"] for s in doc["members"]["b"]["segments"]] == ["eligible"]
    assert [s["state"] for s in doc["members"]["c"]["segments"]] == ["no_history"]
    assert [s["reason"] for s in doc["reference"]] == ["binderhub=1 from prime a"]
    # Gating suspended before the window is still suspended at its start.
    assert [(s["state"], s["reason"]) for s in known["gate"]] == [
        ("suspended", "reference version is stale")
    ]
