"""What /status draws from history: one window of events read from the store, with each
strip's last change before the window (a bounded scan backwards), never failing the page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from shared.store import Store
from shared.timeline import PICTURED, WINDOWS, timeline

#: At most this many entries are read backwards from the window start to find each strip's
#: state then; past it, a strip whose last change is older shows "no history".
SCAN_LIMIT = 20_000
_PAGE = 1000
#: A store that does not answer within this long leaves the page without pictures.
READ_TIMEOUT = 2.0


def _parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, seq = text.split("-")
    return int(ms), int(seq)


def _before(entry_id: bytes | str) -> str:
    """The stream ID just before ``entry_id`` (XREVRANGE's inclusive bound)."""
    ms, seq = _parse_id(entry_id)
    return f"{ms}-{seq - 1}" if seq > 0 else f"{ms - 1}-18446744073709551615"


def _after(entry_id: bytes | str) -> str:
    """The stream ID just after ``entry_id`` (XRANGE's inclusive bound)."""
    ms, seq = _parse_id(entry_id)
    return f"{ms}-{seq + 1}"


_OBSERVATION = b'{"event":"observation"'


def _pictured(raw: bytes) -> dict[str, Any] | None:
    """An entry the pictures draw, parsed; None for the rest. Observations, most of the
    stream, are recognised by their first bytes (events are written compact, ``event``
    first) and never parsed."""
    if raw.startswith(_OBSERVATION):
        return None
    event: dict[str, Any] = json.loads(raw)
    return event if event.get("event") in PICTURED else None


async def _last_changes_before(store: Store, start: float, members: set[str]) -> list[Any]:
    """Going back from ``start``: events until each member's and the reference's last
    change is found (or the scan limit), so the strips know their state at ``start``."""
    needed = {("member_state_changed", m) for m in members} | {
        ("reference_changed", None),
        ("gate_suspended", None),
    }
    kept: list[Any] = []
    bound = f"{max(int(start * 1000) - 1, 0)}-18446744073709551615"
    scanned = 0
    while needed and scanned < SCAN_LIMIT:
        entries: list[Any] = await store.client.xrevrange(  # type: ignore[assignment]
            store.history_key, bound, "-", count=_PAGE
        )
        for _id, fields in entries:
            event = _pictured(fields[b"e"])
            if event is not None:
                kept.append(event)
                needed.discard((event["event"], event.get("member")))
        scanned += len(entries)
        if len(entries) < _PAGE or _parse_id(entries[-1][0]) == (0, 0):
            break
        bound = _before(entries[-1][0])
        await asyncio.sleep(0)  # let redirects through between pages
    kept.reverse()
    return kept


async def _read(store: Store, start: float, members: set[str]) -> tuple[float | None, list[Any]]:
    """(when history starts, the pictured events from ``start`` on, each strip's last
    change before it first), read a page at a time."""
    first: list[Any] = await store.client.xrange(store.history_key, "-", "+", count=1)  # type: ignore[assignment]
    available_since = json.loads(first[0][1][b"e"]).get("at") if first else None
    events: list[Any] = []
    bound = f"{int(max(start, 0) * 1000)}-0"
    while True:
        entries: list[Any] = await store.client.xrange(  # type: ignore[assignment]
            store.history_key, bound, "+", count=_PAGE
        )
        events.extend(e for _id, fields in entries if (e := _pictured(fields[b"e"])))
        if len(entries) < _PAGE:
            break
        bound = _after(entries[-1][0])
        await asyncio.sleep(0)  # let redirects through between pages
    prior = await _last_changes_before(store, start, members)
    since = float(available_since) if available_since is not None else None
    return since, prior + events


async def window_timeline(
    store: Store, window: str, members: Iterable[str], now: float
) -> dict[str, Any]:
    """The pictures' document for ``window`` ending ``now``; on a store error, one that
    says why (the page then shows the present only)."""
    names = list(members)
    try:
        available_since, events = await asyncio.wait_for(
            _read(store, now - WINDOWS[window], set(names)), READ_TIMEOUT
        )
    except Exception as exc:
        return {"window": window, "error": f"cannot read history from the store: {exc!r}"}
    return timeline(events, available_since, names, window, now)


class PicturesCache:
    """A router's pictures, reused for a while: a strip is 1000 units wide, so reusing a
    window's pictures for ``window / 3600`` (1 s for 1 h, 24 s for 24 h, under 3 min for
    7 d) moves nothing by more than a third of a unit, and spares the store (and this
    router's event loop: 7 days of history is about 20,000 entries to read and parse)
    a read on every page refresh of every viewer. A failed read is not kept."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._kept: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}

    async def get(self, window: str, members: Iterable[str], now: float) -> dict[str, Any]:
        key = (window, tuple(members))
        kept = self._kept.get(key)
        if kept is not None and 0 <= now - kept[0] < WINDOWS[window] / 3600:
            return kept[1]
        doc = await window_timeline(self._store, window, key[1], now)
        if doc.get("error") is None:
            # Only the current member set is worth keeping (the config may have changed).
            self._kept = {k: v for k, v in self._kept.items() if k[1] == key[1]}
            self._kept[key] = (now, doc)
        return doc
