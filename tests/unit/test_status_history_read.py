"""/status reads its pictures from the store, and a store that fails leaves a note."""

from __future__ import annotations

import asyncio
from typing import Any

from router.timeline import _before, window_timeline


class _BrokenStore:
    history_key = "x:history"

    async def read_history(self, since: float | None = None) -> Any:
        raise ConnectionError("refused")


def test_a_store_error_becomes_a_note_not_a_failure() -> None:
    doc = asyncio.run(window_timeline(_BrokenStore(), "6h", ["a"], 1_000_000.0))  # type: ignore[arg-type]
    assert doc == {
        "window": "6h",
        "error": "cannot read history from the store: ConnectionError('refused')",
    }


def test_the_scan_backwards_steps_to_the_previous_stream_id() -> None:
    assert _before(b"1000-3") == "1000-2"
    assert _before("1000-0") == "999-18446744073709551615"
