"""BinderHub's launch metrics, declared and fed as binderhub/builder.py does, for tests that
need the /metrics text of a member whose launches they control."""

from __future__ import annotations

import threading

from fedredirect.launchmetrics import LaunchMetrics

REPO = "https://github.com/binder-examples/requirements"


class BinderHubLaunches:
    """One BinderHub process's launch metrics (the simulated member's declarations, which
    are BinderHub's): ``launch()`` counts a launch the way BinderHub does (a ``retry``
    observation per failed attempt that is tried again, then ``success`` or ``failure``),
    ``refuse()`` a quota refusal, ``restart()`` starts every count from 0 again, ``text()``
    is its /metrics answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.restart()

    def restart(self) -> None:
        metrics = LaunchMetrics()
        with self._lock:
            self._metrics = metrics
            self._time = metrics.launch_time
            self._count = metrics.launch_count

    def launch(self, ok: bool = True, *, retries: int = 0, seconds: float = 3.0) -> None:
        with self._lock:
            self._launch(ok, retries, seconds)

    def launches(self, successes: int = 0, failures: int = 0) -> None:
        """Several launches at once: no answer of /metrics shows some of them only."""
        with self._lock:
            for ok in [True] * successes + [False] * failures:
                self._launch(ok, 0, 3.0)

    def _launch(self, ok: bool, retries: int, seconds: float) -> None:
        for _ in range(retries):
            self._time.labels(status="retry", retries=-1).observe(seconds)
        status = "success" if ok else "failure"
        self._time.labels(status=status, retries=retries if ok else -1).observe(seconds)
        self._count.labels(status=status, provider="GitHub", repo=REPO).inc()

    def refuse(self, status: str = "pod_quota") -> None:
        """A launch refused for a quota: counted by repository only, as check_quota does."""
        with self._lock:
            self._count.labels(status=status, provider="GitHub", repo=REPO).inc()

    def text(self) -> str:
        with self._lock:  # one consistent answer, as a scrape between two launches
            return self._metrics.exposition().decode()
