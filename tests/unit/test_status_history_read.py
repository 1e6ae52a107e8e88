"""/status reads its pictures from the store, and a store that fails leaves a note."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from router.timeline import PicturesCache, _after, _before, _pictured, window_timeline


class _BrokenStore:
    history_key = "x:history"

    def __init__(self) -> None:
        self.client = self

    async def xrange(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("refused")


def test_a_store_error_becomes_a_note_not_a_failure() -> None:
    doc = asyncio.run(window_timeline(_BrokenStore(), "6h", ["a"], 1_000_000.0))  # type: ignore[arg-type]
    assert doc == {
        "window": "6h",
        "error": "cannot read history from the store: ConnectionError('refused')",
    }


def test_the_reads_step_to_the_neighbouring_stream_ids() -> None:
    assert _before(b"1000-3") == "1000-2"
    assert _before("1000-0") == "999-18446744073709551615"
    assert _after(b"1000-3") == "1000-4"


def test_observations_are_skipped_unparsed_and_other_kinds_left_out() -> None:
    assert _pictured(b'{"event":"observation","member":"a","record":{"not json') is None
    assert _pictured(b'{"event":"config","at":1,"config":{}}') is None
    assert _pictured(b'{"at":1,"event":"observation"}') is None  # parsed, then left out
    drain = {"event": "drain", "member": "a", "at": 1.0, "reason": ""}
    assert _pictured(json.dumps(drain, separators=(",", ":")).encode()) == drain


class _CountingStore:
    """A store with no history yet that counts its reads (and fails when told to)."""

    history_key = "x:history"

    def __init__(self) -> None:
        self.reads = 0
        self.fail = False
        self.client = self

    async def xrange(self, key: str, low: str, high: str, count: int) -> list[Any]:
        if low == "-":  # a read starts by asking where history starts
            self.reads += 1
        if self.fail:
            raise ConnectionError("refused")
        return []

    async def xrevrange(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def test_pictures_are_reused_for_a_window_over_3600_then_read_again() -> None:
    store = _CountingStore()
    cache = PicturesCache(store)  # type: ignore[arg-type]

    async def scenario() -> list[int]:
        reads = []
        for window, now in (("24h", 1000.0), ("24h", 1023.0), ("1h", 1023.0), ("24h", 1024.5)):
            doc = await cache.get(window, ["a"], now)
            assert doc["window"] == window and doc["error"] is None
            reads.append(store.reads)
        store.fail = True
        failed = await cache.get("6h", ["a"], 1030.0)
        assert failed["error"] is not None
        store.fail = False
        await cache.get("6h", ["a"], 1030.5)  # a failure is not kept
        reads.append(store.reads)
        await cache.get("24h", ["a", "b"], 1031.0)  # another member set: read
        reads.append(store.reads)
        return reads

    assert asyncio.run(scenario()) == [1, 1, 2, 3, 5, 6]
