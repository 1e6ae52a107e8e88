"""The routing table of one view generation, and the answer to a launch decided from it.

A table is built from a :class:`~shared.evaluate.View` when what decides a launch changes
(targets, load balancer, fallback or outage, cookie age), not whenever the view does. It
holds each target as header bytes, the sticky-cookie check as a dict lookup, and a bounded
cache by launch path and by key of the balancer's decision (``rendezvous``) or of the
repository's order (``bounded``: a launch goes to its first member while that member has
room below its bound in this router's recent launches, :class:`LoadBound`, which outlives
the table; else the order is walked). The decisions themselves are the core's pure
functions (:func:`shared.evaluate.balance`, :func:`shared.evaluate.sticky_decision`,
:class:`shared.bounded.LaunchWindow`); this module only remembers them. A launch to a
member that reports its pods and quota also takes one from the room this router has left
for it (:mod:`router.sent`): the launch that uses it up has the view evaluated again at
once, so the member is full for the next one.
:meth:`RoutingTable.answer` is the whole answer to one launch request, as status, headers
and body; every answer but a redirect is precomputed.

The Location is always a configured member URL followed by the request's own path and
query, which are checked to be printable ASCII, so no request can steer the redirect to
another host. Like BinderHub's build API, every /build/ answer allows any origin (CORS),
so a launch page on another site sees the real status (a 503, say), not a network error.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from router.sent import LaunchCounts, Sent
from shared.balance import cache_key, repo_path, still_first
from shared.bounded import (
    LaunchWindow,
    Load,
    RecentLaunches,
    member_loads,
    rendezvous_order,
    with_limits,
)
from shared.evaluate import Decision, View, balance, balancer_reason, sticky_decision

Headers = list[tuple[bytes, bytes]]
#: A launch's answer: status, headers, body (a HEAD gets the headers only).
Answer = tuple[int, Headers, bytes]

#: Longer launch targets are refused: no repository spec needs them, and the Location and
#: cookie would carry them whole.
MAX_TARGET_BYTES = 8192
#: Longer Cookie headers are not read (the browser sends the sticky cookie in far less).
MAX_COOKIE_BYTES = 8192
ALLOW_ANY_ORIGIN = (b"access-control-allow-origin", b"*")
_EMPTY = (b"content-length", b"0")
_not_printable = re.compile(rb"[^\x21-\x7e]").search


def printable_ascii(data: bytes) -> bool:
    """Only visible ASCII (no space, no control, nothing above 0x7E)."""
    return _not_printable(data) is None


def fixed_answer(
    status: int,
    body: bytes,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    content_type: bytes = b"text/plain; charset=utf-8",
) -> Answer:
    """A precomputed answer: the server only reads it, so one object serves every request."""
    length = str(len(body)).encode()
    return status, [*headers, (b"content-type", content_type), (b"content-length", length)], body


_NOBODY_PAGE = (
    b"<!doctype html><title>No capacity</title><h1>No member can take launches right now</h1>"
    b"<p>Every member of the federation is full, unhealthy or unreachable. "
    b"Please try again in a few minutes.</p>\n"
)
TOO_LONG = fixed_answer(414, b"request target too long\n", (ALLOW_ANY_ORIGIN,))
BAD_PATH = fixed_answer(400, b"bad request path\n", (ALLOW_ANY_ORIGIN,))
BAD_REQUEST = fixed_answer(400, b"bad request\n", (ALLOW_ANY_ORIGIN,))
NO_VIEW = fixed_answer(503, b"no view of the federation yet; retry shortly\n", (ALLOW_ANY_ORIGIN,))
NOBODY = fixed_answer(503, _NOBODY_PAGE, (ALLOW_ANY_ORIGIN, (b"retry-after", b"30")), b"text/html")


def host_cookie(header: bytes) -> bytes | None:
    """The value of the first ``host`` cookie in a Cookie header, unquoted, as sent.

    Cookie pairs are split at ``;`` and trimmed (RFC 6265 5.4, as browsers send them); a
    browser sends the cookie with the longest path first, so the first ``host`` is the
    repository's own. No character is interpreted: the value is only ever compared with
    member URLs, so anything else (quotes, escapes, binary) simply matches no member."""
    if b"host" not in header:
        return None
    for pair in header.split(b";"):
        name, eq, value = pair.partition(b"=")
        if eq and name.strip(b" \t") == b"host":
            value = value.strip(b" \t")
            if len(value) >= 2 and value[0] == 0x22 and value[-1] == 0x22:  # "quoted"
                value = value[1:-1]
            return value
    return None


def refused_target(path: bytes, query: bytes) -> Answer | None:
    """The answer to a launch target no member may be sent (too long, or not printable
    ASCII under /build/); None for a valid one."""
    if len(path) + len(query) > MAX_TARGET_BYTES:
        return TOO_LONG
    if not path.startswith(b"/build/") or not printable_ascii(path + query):
        return BAD_PATH
    return None


def no_view_answer(scope: dict[str, Any]) -> Answer:
    """The answer to a launch before this router has any view: its target is still checked."""
    path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
    return refused_target(path, scope.get("query_string", b"")) or NO_VIEW


#: Launch paths remembered per generation. A full cache is emptied, not evicted entry by
#: entry: a million distinct launches cost one rendezvous each and never more memory
#: than this many entries (about 2.5 MB).
MAX_PATHS = 8192
#: The members of a repository's order a table keeps (``bounded``): a launch rarely walks
#: past the first, and one that walks past these has the rest of its order computed.
ORDER_KEPT = 4
_UNSAFE_COOKIE_PATH = frozenset(b';,"\\')


class Route:
    """Where a launch goes, as the bytes its answer carries, and how many went there.

    ``count`` is this generation's redirects by this route: an attribute increment is the
    cheapest counter there is; :meth:`RoutingTable.counts` reads them. ``sent`` is its
    member's launches since its report and room (:mod:`router.sent`), None for a member
    that reports no quota."""

    __slots__ = ("cookie_head", "count", "counted", "member", "sent", "url")

    def __init__(self, url: bytes, counted: tuple[str, str]) -> None:
        self.url = url  # the member URL: the Location is this + the request's path and query
        self.cookie_head = b"host=" + url + b"; Path="  # the cookie path and tail follow
        self.counted = counted  # (member, reason): the labels of the redirect counters
        self.member = counted[0]
        self.count = 0
        self.sent: Sent | None = None


class Order:
    """A repository's order (``bounded``): its first :data:`ORDER_KEPT` members, each with
    its part of the window and its route, and the cache key to compute the rest from."""

    __slots__ = ("first", "key", "loads", "route", "routes")

    def __init__(self, key: str, loads: tuple[Load, ...], routes: tuple[Route, ...]):
        self.key = key
        self.loads = loads
        self.first, self.route = loads[0], routes[0]  # a launch's most likely, at hand
        self.routes = routes


class LoadBound:
    """This router process's part of ``load_balancer: bounded``: its recent launches (a
    :class:`shared.bounded.LaunchWindow` fed ``clock``) and the launches each member was
    passed over for by its bound. Every routing table shares the one its router holds, so
    a new view does not reset what the window counts."""

    def __init__(self, clock: Callable[[], float], seconds: float = 60.0) -> None:
        self.clock = clock
        self.window = LaunchWindow(seconds)
        self.window.advance(clock())  # its first bucket: a launch before would leave at once
        self.passed_over: defaultdict[str, int] = defaultdict(int)

    def count(self, member: str) -> None:
        """One launch to ``member`` now (a cookie's: honoured, and counted all the same)."""
        self.window.advance(self.clock())
        self.window.add(member)

    async def run(self) -> None:
        """Forever: move the window every step. A launch that its member's room takes does
        not read the clock, so this is what makes launches leave the window on time."""
        while True:
            await asyncio.sleep(self.window.step)
            self.window.advance(self.clock())

    def recent(self, view: View) -> RecentLaunches:
        """Each member's part of the window now, under ``view``'s targets and factor."""
        window = self.current(view)
        loads = member_loads(view.targets, view.config.bounded_load.factor, window)
        return RecentLaunches(window.seconds, window.total, loads, dict(self.passed_over))

    def current(self, view: View) -> LaunchWindow:
        """The window as ``view``'s config sizes it, moved to now: what a launch now
        would be judged against."""
        self.fit(view)
        self.window.advance(self.clock())
        return self.window

    def fit(self, view: View) -> None:
        """Size the window as ``view``'s config says (``bounded_load.window``)."""
        if self.window.seconds != view.config.bounded_load.window:
            self.window.resize(view.config.bounded_load.window)


def routing_identity(view: View) -> tuple[Any, ...]:
    """Everything a launch's answer depends on besides the request: two views with the same
    identity answer every launch alike, so they share one table and its cache."""
    return (
        view.targets,
        view.config.load_balancer,
        view.config.bounded_load,
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

    def __init__(
        self,
        view: View,
        max_paths: int = MAX_PATHS,
        draw: Callable[[], float] = random.random,
        load: LoadBound | None = None,
        launches: LaunchCounts | None = None,
    ) -> None:
        self.view = view
        #: this router's launches since each member's report (kept for the next table)
        self.launches = LaunchCounts() if launches is None else launches
        self.launches.fit(view)
        self.draw = draw  # the uniform draw of the ``random`` balancer
        self.identity = routing_identity(view)
        self.max_paths = max_paths
        self.cached = view.config.load_balancer == "rendezvous"  # random stays random
        #: this router's recent launches (``bounded``; kept for the next table either way)
        self.load = LoadBound(time.monotonic) if load is None else load
        self.window, self.clock = self.load.window, self.load.clock  # read a launch
        self.bounded: LoadBound | None = None
        if view.config.load_balancer == "bounded":
            self.bounded = self.load
            self.load.fit(view)
            factor = view.config.bounded_load.factor
            self.window.set_limits(dict(with_limits(view.targets, factor)))
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
        #: launch path (raw bytes) -> (cookie path, the balancer's route, the repository's
        #: Order with ``bounded``, or None); only valid launch paths enter, so a hit needs
        #: no more checks of the path.
        self.paths: dict[bytes, tuple[bytes, Any]] = {}
        self.keys: dict[str, Any] = {}  # cache key -> the balancer's route, or Order

    def for_view(self, view: View) -> RoutingTable:
        """The table for ``view``: this one (cache kept) while the identity is the same."""
        if view is self.view:
            return self
        identity = routing_identity(view)
        if identity == self.identity:
            self.view = view
            if self.launches.fit(view):  # the rooms move with every view, the routes stay
                limited = self.launches.limited
                for route in self._routes.values():
                    route.sent = limited.get(route.member)
            return self
        table = RoutingTable(view, self.max_paths, self.draw, self.load, self.launches)
        if self.cached and table.cached and identity[1:] == self.identity[1:]:
            table.keep_picks(self)  # only the targets changed
        return table

    def keep_picks(self, old: RoutingTable) -> None:
        """Take over the rendezvous picks of ``old`` (same balancer and reason, other
        targets) that the change of targets leaves as they were (:func:`still_first`): a
        member filling up or coming back in a large federation moves the keys it wins, and
        every other key keeps its pick instead of ranking every target again."""
        before = {t.name: t for t in old.view.targets}
        targets = {t.name: t for t in self.view.targets}
        joined = [t for name, t in targets.items() if before.get(name) != t]
        reason = balancer_reason(self.view)
        for key, route in old.keys.items():
            first = None if route is None else targets.get(route.member)
            if first is None or first != before.get(first.name):
                continue
            if not joined or still_first(key, first, joined):
                self.keys[key] = self.route(Decision(first.name, first.url, reason))

    def route(self, decision: Decision) -> Route:
        """The route of a decision with a member (one object per member and reason)."""
        assert decision.member is not None and decision.url is not None
        assert decision.reason is not None
        counted = (decision.member, decision.reason)
        found = self._routes.get(counted)
        if found is None:
            found = self._routes[counted] = Route(decision.url.encode("ascii"), counted)
            found.sent = self.launches.limited.get(decision.member)
        return found

    def counts(self) -> dict[tuple[str, str], int]:
        """Redirects answered from this table, by (member, reason)."""
        return {key: route.count for key, route in self._routes.items() if route.count}

    def entry(self, path: bytes) -> tuple[bytes, Any]:
        """(cookie path, balancer's route) of a valid launch path, from the cache if there.

        With ``rendezvous`` the route is computed once per cache key and generation; with
        ``bounded`` the repository's :class:`Order` is, and each launch walks it; with
        ``random`` it is None (:meth:`answer` decides each launch anew)."""
        found = self.paths.get(path)
        if found is not None:
            return found
        if len(self.paths) >= self.max_paths:
            self.paths.clear()
            self.keys.clear()
        text = path.decode("ascii")
        balanced: Any = None
        if self.cached or self.bounded is not None:
            key = cache_key(text)
            if key in self.keys:
                balanced = self.keys[key]
            elif self.cached:
                balanced = self.keys[key] = self.decide(text, 0.0)
            else:
                balanced = self.keys[key] = self.order(key)
        found = self.paths[path] = (cookie_path(path), balanced)
        return found

    def order(self, key: str, kept: int = ORDER_KEPT) -> Order | None:
        """The first ``kept`` members of cache key ``key``'s order, with their limits and
        routes (None: nobody can take it)."""
        targets = rendezvous_order(key, self.view.targets)[:kept]
        if not targets:
            return None
        reason = balancer_reason(self.view)
        routes = tuple(self.route(Decision(t.name, t.url, reason)) for t in targets)
        return Order(key, tuple(self.window.load(t.name) for t in targets), routes)

    def walk(self, order: Order) -> Route:
        """The route of a launch (``bounded``) whose order's first member has no room left:
        the window moved to now, and the first of the order below its bound taken
        (:meth:`LaunchWindow.take`; past the members kept, the rest of the order computed;
        in none, its first), the members passed over counted."""
        window = self.window
        window.advance(self.clock())
        chosen = window.take(order.loads)
        if chosen is None:
            whole = self.order(order.key, len(self.view.targets))
            assert whole is not None
            order = whole
            chosen = window.take(order.loads)
            if chosen is None:
                chosen = 0
                window.add(order.first.member)
        for load in order.loads[:chosen]:
            self.load.passed_over[load.member] += 1
        return order.routes[chosen]

    def decide(self, path: str, u: float) -> Route | None:
        """The balancer's route for ``path`` (uncached), None when nobody can take it."""
        decision = balance(self.view, path, u)
        return None if decision.member is None else self.route(decision)

    def answer(self, scope: dict[str, Any]) -> Answer:
        """The answer to a ``GET|HEAD /build/...`` request (its ASGI scope), checks in order:
        the target (414, 400), a well-formed request (400: an HTTP/0.9 request line, or
        HTTP/1.1 without a Host, which RFC 9112 3.2 says to refuse), then a 307 to the
        ``host`` cookie's member while it is a target, else the balancer's, else a 503.
        One pass over the headers finds the cookie, whether the client used https
        (X-Forwarded-Proto first, else the scheme) and the Host. Counts the redirect."""
        path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query: bytes = scope.get("query_string", b"")
        entry = self.paths.get(path)
        if entry is None or query:  # a cached path was checked when it entered the cache
            refused = refused_target(path, query)
            if refused is not None:
                return refused
        cookie = None
        https = scope.get("scheme") == "https"
        forwarded_seen = host_seen = False
        for name, value in scope["headers"]:
            if name == b"host":
                host_seen = host_seen or value != b""  # empty: missing, as no client sends
            elif name == b"cookie":
                if cookie is None and len(value) <= MAX_COOKIE_BYTES:
                    cookie = host_cookie(value)
            elif name == b"x-forwarded-proto" and not forwarded_seen:
                forwarded_seen = True
                https = value.split(b",")[0].strip().lower() == b"https"
        version = scope.get("http_version")
        if version == "0.9" or (version == "1.1" and not host_seen):
            return BAD_REQUEST
        if entry is None:
            entry = self.entry(path)
        route = None if cookie is None else self.sticky.get(cookie)
        if route is None:
            if self.cached:
                route = entry[1]
            elif self.bounded is not None:  # the first of its order below its bound
                order: Order | None = entry[1]
                if order is None:
                    return NOBODY
                first = order.first
                if first.room > 0:  # the rule chooses it: counted (LaunchWindow.add)
                    first.room -= 1
                    self.window.taken += 1
                    route = order.route
                else:
                    route = self.walk(order)
            else:
                route = self.decide(path.decode(), self.draw())
            if route is None:
                return NOBODY
        elif self.bounded is not None:
            self.bounded.count(route.member)
        route.count += 1
        sent = route.sent
        if sent is not None:  # its member reports a quota: the launch takes from its room
            sent.room -= 1  # and so is counted (Sent.count)
            if sent.room <= 0:
                self.launches.used_up(frozenset([sent.member]))
        tail = self.cookie_tail_secure if https else self.cookie_tail
        # No Cache-Control: a 307 without explicit freshness is never stored (RFC 9111
        # 4.2.2); no Content-Type: there is no body; no more headers than a launch needs.
        headers = [
            (b"location", route.url + path + (b"?" + query if query else b"")),
            (b"set-cookie", route.cookie_head + entry[0] + tail),
            ALLOW_ANY_ORIGIN,
            _EMPTY,
        ]
        return 307, headers, b""
