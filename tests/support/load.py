"""Launches against routers from a thread, for tests that break something under traffic."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import httpx

from fedredirect.simulator import MemberServer


class Load:
    """Launches against the routers from a thread, recording every outcome."""

    def __init__(self, routers: Sequence[str], members: Mapping[str, MemberServer]) -> None:
        self.routers = routers
        self.by_url = {m.url: name for name, m in members.items()}
        self.outcomes: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        with httpx.Client(timeout=3) as client:
            while not self._stop.is_set():
                router_url = self.routers[i % len(self.routers)]
                try:
                    r = client.get(f"{router_url}/build/gh/org/r{i}/HEAD", follow_redirects=False)
                    location = r.headers.get("location", "")
                    base = location.split("/build/")[0]
                    outcome = self.by_url.get(base, f"HTTP {r.status_code} {location[:40]}")
                except httpx.HTTPError as exc:
                    outcome = f"error {type(exc).__name__}"
                self.outcomes.append((time.monotonic(), outcome))
                i += 1
                time.sleep(0.005)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def since(self, t: float) -> Counter[str]:
        return Counter(outcome for at, outcome in self.outcomes if at >= t)
