"""A stand-in for ``hashlib.blake2b`` whose digest a test chooses (the balancer's edge cases)."""

from __future__ import annotations

from typing import Any


def fake_blake2b(digest: bytes) -> Any:
    class Fake:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def digest(self) -> bytes:
            return digest

    return Fake
