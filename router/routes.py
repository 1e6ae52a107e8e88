"""The routing table of one view generation: what the redirect path needs, ready to use.

Built from a :class:`~shared.evaluate.View` when what decides a launch changes (targets,
load balancer, fallback or outage, cookie age), not every time the view is re-evaluated.
It holds each target as header bytes, the sticky-cookie check as a dict lookup, and a
bounded cache of the balancer's decision (rendezvous only) by launch path and by key.
The decisions themselves are the core's pure functions (:func:`shared.evaluate.balance`,
:func:`shared.evaluate.sticky_decision`); this module only remembers them.
"""

from __future__ import annotations

from typing import Any

from shared.balance import cache_key, repo_path
from shared.evaluate import Decision, View, balance, sticky_decision

#: Launch paths remembered per generation. A full cache is emptied, not evicted entry by
#: entry: a million distinct launches cost one rendezvous each and never more memory
#: than this many entries (about 2.5 MB).
MAX_PATHS = 8192
_UNSAFE_COOKIE_PATH = frozenset(b';,"\\')


class Route:
    """Where a launch goes, as the bytes its answer carries, and how many went there.

    ``count`` is this generation's redirects by this route: an attribute increment is the
    cheapest counter there is; :meth:`RoutingTable.counts` reads them."""

    __slots__ = ("cookie_head", "count", "counted", "url")

    def __init__(self, url: bytes, counted: tuple[str, str]) -> None:
        self.url = url  # the member URL: the Location is this + the request's path and query
        self.cookie_head = b"host=" + url + b"; Path="  # the cookie path and tail follow
        self.counted = counted  # (member, reason): the labels of the redirect counters
        self.count = 0


def routing_identity(view: View) -> tuple[Any, ...]:
    """Everything a launch's answer depends on besides the request: two views with the same
    identity answer every launch alike, so they share one table and its cache."""
    return (
        view.targets,
        view.config.load_balancer,
        view.fallback_active,
        view.outage_active,
        view.config.cookie_max_age_seconds,
    )


def cookie_path(path: bytes) -> bytes:
    """The sticky cookie's Path: the repository's launch path, or ``/build/`` when that
    path holds a character that would end or quote a cookie attribute."""
    scoped = repo_path(path.decode("ascii")).encode("ascii")
    return b"/build/" if _UNSAFE_COOKIE_PATH.intersection(scoped) else scoped


class RoutingTable:
    """One generation's targets, sticky lookup and cached balancer decisions."""

    def __init__(self, view: View, max_paths: int = MAX_PATHS) -> None:
        self.view = view
        self.identity = routing_identity(view)
        self.max_paths = max_paths
        self.cached = view.config.load_balancer == "rendezvous"  # random stays random
        tail = f"; Max-Age={view.config.cookie_max_age_seconds}; HttpOnly; SameSite=Lax"
        self.cookie_tail = tail.encode("ascii")
        self.cookie_tail_secure = self.cookie_tail + b"; Secure"
        self._routes: dict[tuple[str, str], Route] = {}
        #: The sticky check: a cookie value (bytes, as sent) -> its route, for the targets a
        #: cookie may pin now; any other value misses.
        self.sticky: dict[bytes, Route] = {}
        for target in view.targets:
            decision = sticky_decision(view, target.url)
            if decision is not None:
                self.sticky[target.url.encode("ascii")] = self.route(decision)
        #: launch path (raw bytes) -> (cookie path, the balancer's route or None); only
        #: valid launch paths enter, so a hit needs no more checks of the path.
        self.paths: dict[bytes, tuple[bytes, Route | None]] = {}
        self.keys: dict[str, Route | None] = {}  # cache key -> the balancer's route

    def for_view(self, view: View) -> RoutingTable:
        """The table for ``view``: this one (cache kept) while the identity is the same."""
        if view is self.view:
            return self
        if routing_identity(view) == self.identity:
            self.view = view
            return self
        return RoutingTable(view, self.max_paths)

    def route(self, decision: Decision) -> Route:
        """The route of a decision with a member (one object per member and reason)."""
        assert decision.member is not None and decision.url is not None
        assert decision.reason is not None
        counted = (decision.member, decision.reason)
        found = self._routes.get(counted)
        if found is None:
            found = self._routes[counted] = Route(decision.url.encode("ascii"), counted)
        return found

    def counts(self) -> dict[tuple[str, str], int]:
        """Redirects answered from this table, by (member, reason)."""
        return {key: route.count for key, route in self._routes.items() if route.count}

    def entry(self, path: bytes) -> tuple[bytes, Route | None]:
        """(cookie path, balancer's route) of a valid launch path, from the cache if there.

        With ``rendezvous`` the route is computed once per cache key and generation; with
        ``random`` it is None (the caller draws with :meth:`draw`)."""
        found = self.paths.get(path)
        if found is not None:
            return found
        if len(self.paths) >= self.max_paths:
            self.paths.clear()
            self.keys.clear()
        text = path.decode("ascii")
        balanced: Route | None = None
        if self.cached:
            key = cache_key(text)
            if key in self.keys:
                balanced = self.keys[key]
            else:
                balanced = self.keys[key] = self.decide(text, 0.0)
        found = self.paths[path] = (cookie_path(path), balanced)
        return found

    def decide(self, path: str, u: float) -> Route | None:
        """The balancer's route for ``path`` (uncached), None when nobody can take it."""
        decision = balance(self.view, path, u)
        return None if decision.member is None else self.route(decision)
