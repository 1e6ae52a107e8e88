"""The router's routing table: the balancer's decision kept per view generation, bounded;
random never kept; the sticky cookie a dict lookup; counts kept across generations."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import router.routes
from router.redirect import RedirectApp
from router.routes import RoutingTable, cookie_path, host_cookie, no_view_answer
from router.sent import LaunchCounts
from shared.config import parse_config
from shared.evaluate import View, evaluate
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from tests.support.inprocess import launch_answer

NOW = 1_700_000_000.0
VERSIONS = {"binderhub": "1.0"}


def view_of(
    members: dict[str, float], *, full: tuple[str, ...] = (), now: float = NOW, **settings: Any
) -> View:
    """Every member eligible (but those ``full``), weights as given, the first the prime."""
    names = list(members)
    config = parse_config(
        {
            **settings,
            "members": {
                name: {"url": f"https://{name}.example.org", "weight": w, "prime": name == names[0]}
                for name, w in members.items()
            },
        }
    )
    observations = {
        name: MemberObservation(
            member=name,
            checked_at=NOW,
            health=HealthObservation("ok", (), 100 if name in full else 1, 100, NOW),
            versions=dict(VERSIONS),
            versions_at=NOW,
        )
        for name in names
    }
    return evaluate(config, observations, {}, CheckerHeartbeat("c", NOW, fence=1), now)


THREE = {"alpha": 50.0, "beta": 40.0, "gamma": 30.0}
HUNDRED = {f"m{i:03d}": 10.0 + i % 7 for i in range(100)}


def launch(i: int | str, ref: str = "HEAD") -> bytes:
    return f"/build/gh/org/repo{i}/{ref}".encode()


class CountingBalance:
    """Wraps ``router.routes.balance`` (the core's pure function) and counts its calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.real = router.routes.balance
        monkeypatch.setattr(router.routes, "balance", self)

    def __call__(self, view: View, path: str, u: float) -> Any:
        self.calls += 1
        return self.real(view, path, u)


# --- the same decisions as the core -----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    members=st.sampled_from([THREE, HUNDRED, {"solo": 1.0}]),
    repo=st.text("abcXYZ019-_.", min_size=1, max_size=12),
    provider=st.sampled_from(["gh", "gl", "gist", "git", "zenodo", "GH"]),
    ref=st.text("abc019-_.", min_size=1, max_size=6),
)
def test_a_cached_route_is_the_core_pick(
    members: dict[str, float], repo: str, provider: str, ref: str
) -> None:
    view = view_of(members)
    table = RoutingTable(view)
    path = f"/build/{provider}/org/{repo}/{ref}"
    decision = view.pick(path)
    for _ in range(2):  # computed, then from the cache
        _, route = table.entry(path.encode())
        assert route is not None
        assert route.url == decision.url.encode()  # type: ignore[union-attr]
        assert route.counted == (decision.member, "balancer")


def test_the_balancer_runs_once_per_key_per_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    balance = CountingBalance(monkeypatch)
    table = RoutingTable(view_of(HUNDRED))
    for _ in range(3):
        for i in range(50):
            for ref in ("HEAD", "main", "v1"):  # every ref of a repository has one key
                table.entry(launch(i, ref))
    assert balance.calls == 50
    assert len(table.keys) == 50 and len(table.paths) == 150
    # the paths of one key share one route object
    assert table.entry(launch(7, "HEAD"))[1] is table.entry(launch(7, "v1"))[1]


def test_a_reevaluated_view_keeps_the_table_and_its_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    balance = CountingBalance(monkeypatch)
    view = view_of(THREE)
    table = RoutingTable(view)
    for i in range(20):
        table.entry(launch(i))
    later = view_of(THREE, now=NOW + 0.5)  # the same records judged later: a new view
    assert later is not view and later.targets == view.targets
    assert table.for_view(later) is table and table.view is later
    for i in range(20):
        table.entry(launch(i))
    assert balance.calls == 20


def test_a_new_generation_keeps_the_picks_its_targets_leave_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = RoutingTable(view_of(THREE))
    picks = {i: table.entry(launch(i))[1].member for i in range(200)}  # type: ignore[union-attr]
    beta_full = view_of(THREE, full=("beta",))
    fresh = table.for_view(beta_full)
    assert fresh is not table and not fresh.paths
    assert len(fresh.keys) == sum(1 for m in picks.values() if m != "beta")
    balance = CountingBalance(monkeypatch)
    for i in range(200):
        assert fresh.entry(launch(i))[1].member == beta_full.pick(launch(i).decode()).member  # type: ignore[union-attr]
    assert balance.calls == sum(1 for m in picks.values() if m == "beta")  # beta's keys alone
    # beta back: it takes exactly the keys it ranks first in, every other key stays
    back = fresh.for_view(view_of(THREE))
    balance.calls = 0
    assert {i: back.entry(launch(i))[1].member for i in range(200)} == picks  # type: ignore[union-attr]
    assert balance.calls == sum(1 for m in picks.values() if m == "beta")
    table = back
    # what else makes a new generation: the balancer (and its bound), fallback, outage,
    # cookie age
    for other in (
        view_of(THREE, load_balancer="random"),
        view_of(THREE, load_balancer="bounded"),
        view_of(THREE, bounded_load={"factor": 2.0}),
        view_of(THREE, host_cookie_age_hours=1),
        view_of(THREE, full=tuple(THREE)),  # nobody eligible: the fallback
        view_of(THREE, now=NOW + 3600),  # the checker's heartbeat is old: the outage policy
        view_of({**THREE, "beta": 41.0}),
    ):
        assert table.for_view(other) is not table


FIVE = {"alpha": 50.0, "beta": 40.0, "gamma": 30.0, "delta": 5.0, "eps": 1.0}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sets(st.sampled_from(list(FIVE))), st.sampled_from([None, *FIVE])),
        min_size=1,
        max_size=6,
    )
)
def test_across_generations_a_table_answers_as_the_core_picks(
    changes: list[tuple[set[str], str | None]],
) -> None:
    """Members filling up and coming back, weights changing: each table, carried over from
    the one before, sends every launch where the view's own pick does."""
    table = RoutingTable(view_of(FIVE))
    for full, reweighed in changes:
        weights = FIVE if reweighed is None else {**FIVE, reweighed: FIVE[reweighed] + 1}
        view = view_of(weights, full=tuple(full))
        table = table.for_view(view)
        for i in range(40):
            _, route = table.entry(launch(i))
            picked = view.pick(launch(i).decode()).member
            assert (None if route is None else route.member) == picked


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    view = view_of(THREE)
    table = RoutingTable(view, max_paths=100)
    for i in range(1_000):
        path = launch(i)
        cookie, route = table.entry(path)
        assert len(table.paths) <= 100 and len(table.keys) <= 100
        assert route is not None and route.url == view.pick(path.decode()).url.encode()  # type: ignore[union-attr]
        assert cookie == f"/build/gh/org/repo{i}".encode()


def test_random_balancing_is_never_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    balance = CountingBalance(monkeypatch)
    table = RoutingTable(view_of(THREE, load_balancer="random"))
    assert not table.cached
    _cookie, route = table.entry(launch(1))
    assert route is None and not table.keys and balance.calls == 0
    picked = Counter(
        table.decide("/build/gh/org/repo1/HEAD", i / 120).counted[0] for i in range(120)
    )  # type: ignore[union-attr]
    assert picked == {"alpha": 50, "beta": 40, "gamma": 30}
    assert balance.calls == 120


def test_the_sticky_cookie_is_a_lookup_of_the_targets_urls() -> None:
    view = view_of(HUNDRED, full=("m007",))
    table = RoutingTable(view)
    assert set(table.sticky) == {t.url.encode() for t in view.targets}
    route = table.sticky[b"https://m042.example.org"]
    assert route.counted == ("m042", "cookie") and route.url == b"https://m042.example.org"
    for other in (b"https://m007.example.org", b"https://m042.example.org/", b"https://evil"):
        assert other not in table.sticky
    # during the fallback no cookie pins a launch
    assert RoutingTable(view_of(THREE, full=tuple(THREE))).sticky == {}


def test_cookie_path_is_the_repository_or_build() -> None:
    assert cookie_path(b"/build/gh/Org/Repo/HEAD") == b"/build/gh/Org/Repo"
    assert cookie_path(b"/build/zenodo/10.5281/zenodo.1") == b"/build/zenodo/10.5281/zenodo.1"
    for unsafe in (b'/build/gh/o/"r/HEAD', b"/build/gh/o/r;x/HEAD", b"/build/gh/o/r,x/HEAD"):
        assert cookie_path(unsafe) == b"/build/"


# --- the host cookie --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (b"host=https://a.example.org", b"https://a.example.org"),
        (b'host="https://a.example.org"', b"https://a.example.org"),
        (b"x=1; host=https://a; y=2", b"https://a"),
        (b"x=1;host=https://a", b"https://a"),
        (b"  host =  https://a  ", b"https://a"),
        (b"host=https://first; host=https://second", b"https://first"),  # longest path first
        (b"host=", b""),
        (b'host="', b'"'),
        (b"hostname=x; xhost=y; Host=z", None),
        (b"host", None),
        (b"x=host", None),
        (b"", None),
        (b"host=a=b", b"a=b"),
        (b"host=\xff\xfe", b"\xff\xfe"),
    ],
)
def test_host_cookie(header: bytes, value: bytes | None) -> None:
    assert host_cookie(header) == value


# --- counting ---------------------------------------------------------------------------------


class Holder:
    def __init__(self, view: View) -> None:
        self.view: View | None = view
        self.launches = LaunchCounts()


async def _no_fallthrough(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not a launch")


def call(app: RedirectApp, path: bytes, cookie: bytes | None = None) -> dict[str, Any]:
    headers = [(b"host", b"router.example.org")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return launch_answer(app, path, headers, https=True)


def test_counts_survive_a_new_generation() -> None:
    view = view_of(THREE)
    holder = Holder(view)
    app = RedirectApp(holder, _no_fallthrough)  # type: ignore[arg-type]
    for i in range(30):
        assert call(app, launch(i))["status"] == 307
    call(app, launch(1), cookie=b"host=https://gamma.example.org")
    first = app.counts
    assert sum(first.values()) == 31 and first[("gamma", "cookie")] == 1
    holder.view = view_of(THREE, full=("alpha",))  # a new generation
    answer = call(app, launch(99), cookie=b"host=https://alpha.example.org")
    assert answer[b"location"] != b"https://alpha.example.org" + launch(99)
    assert answer[b"set-cookie"].endswith(b"; HttpOnly; SameSite=Lax; Secure")
    later = app.counts
    assert sum(later.values()) == 32
    assert all(later[key] >= count for key, count in first.items())


def test_an_unchanged_generation_answers_alike() -> None:
    view = view_of(THREE)
    holder = Holder(view)
    app = RedirectApp(holder, _no_fallthrough)  # type: ignore[arg-type]
    before = [call(app, launch(i)) for i in range(20)]
    holder.view = replace(view, evaluated_at=NOW + 1)
    assert [call(app, launch(i)) for i in range(20)] == before
    assert sum(app.counts.values()) == 40


# --- the answer to a launch -------------------------------------------------------------------


def scope_of(
    path: bytes,
    query: bytes = b"",
    headers: tuple[tuple[bytes, bytes], ...] = ((b"host", b"router.example.org"),),
    *,
    scheme: str = "http",
    version: str = "1.1",
) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": version,
        "method": "GET",
        "scheme": scheme,
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "headers": list(headers),
    }


def test_a_launch_is_a_307_to_the_balancers_member_with_its_cookie() -> None:
    view = view_of(THREE)
    table = RoutingTable(view)
    path = launch(3)
    member = view.pick(path.decode())
    status, headers, body = table.answer(scope_of(path, b"a=1&b=%20"))
    assert (status, body) == (307, b"")
    assert headers == [
        (b"location", f"{member.url}/build/gh/org/repo3/HEAD?a=1&b=%20".encode()),
        (
            b"set-cookie",
            f"host={member.url}; Path=/build/gh/org/repo3; Max-Age=14400; HttpOnly; "
            "SameSite=Lax".encode(),
        ),
        (b"access-control-allow-origin", b"*"),
        (b"content-length", b"0"),
    ]
    assert table.counts() == {(member.member, "balancer"): 1}
    _, again, _ = table.answer(scope_of(path))  # from the cache now, without a query
    assert again[0] == (b"location", f"{member.url}/build/gh/org/repo3/HEAD".encode())


def test_https_is_the_first_forwarded_proto_else_the_scheme() -> None:
    table = RoutingTable(view_of(THREE))
    host = (b"host", b"r")

    def secure(scheme: str, *forwarded: bytes) -> bool:
        headers = (host, *((b"x-forwarded-proto", f) for f in forwarded))
        cookie = dict(table.answer(scope_of(launch(1), headers=headers, scheme=scheme))[1])
        return cookie[b"set-cookie"].endswith(b"; Secure")

    assert secure("https") and not secure("http")
    assert secure("http", b" HTTPS , http") and not secure("https", b"http", b"https")


def test_the_sticky_cookie_wins_while_its_member_is_a_target() -> None:
    table = RoutingTable(view_of(THREE, full=("alpha",)))
    beta = (b"cookie", b"x=1; host=https://beta.example.org")
    alpha = (b"cookie", b"host=https://alpha.example.org")
    for cookies, member in (((beta,), "beta"), ((alpha, beta), None)):
        _, headers, _ = table.answer(scope_of(launch(5), headers=((b"host", b"r"), *cookies)))
        if member is not None:
            assert dict(headers)[b"location"].startswith(f"https://{member}.".encode())
    assert table.counts()[("beta", "cookie")] == 1
    assert ("alpha", "cookie") not in table.counts()  # full: the first host cookie, ignored


@pytest.mark.parametrize(
    ("scope", "status", "body"),
    [
        (scope_of(b"/build/gh/o/" + b"r" * 8200), 414, b"request target too long\n"),
        (scope_of(launch(1), b"q" * 8200), 414, b"request target too long\n"),
        (scope_of(b"/build/gh/o/r\xff/HEAD"), 400, b"bad request path\n"),
        (scope_of(launch(1), b"a b"), 400, b"bad request path\n"),
        (scope_of(launch(1), headers=()), 400, b"bad request\n"),
        (scope_of(launch(1), headers=((b"host", b""),)), 400, b"bad request\n"),
        (scope_of(launch(1), version="0.9"), 400, b"bad request\n"),
    ],
)
def test_refused_launches_say_why_and_allow_any_origin(
    scope: dict[str, Any], status: int, body: bytes
) -> None:
    table = RoutingTable(view_of(THREE))
    got, headers, sent = table.answer(scope)
    assert (got, sent) == (status, body)
    assert (b"access-control-allow-origin", b"*") in headers
    assert (b"content-length", str(len(body)).encode()) in headers
    assert table.counts() == {}


def test_http_1_0_needs_no_host() -> None:
    table = RoutingTable(view_of(THREE))
    assert table.answer(scope_of(launch(1), headers=(), version="1.0"))[0] == 307


def test_nobody_to_send_to_is_a_503_to_retry() -> None:
    table = RoutingTable(view_of(THREE, full=tuple(THREE), fallback="none"))
    status, headers, body = table.answer(scope_of(launch(1)))
    assert status == 503 and body.startswith(b"<!doctype html>")
    assert (b"retry-after", b"30") in headers and (b"content-type", b"text/html") in headers


def test_random_draws_each_launch_anew() -> None:
    draws = iter([0.0, 0.99])
    table = RoutingTable(view_of(THREE, load_balancer="random"), draw=lambda: next(draws))
    first = dict(table.answer(scope_of(launch(1)))[1])[b"location"]
    second = dict(table.answer(scope_of(launch(1)))[1])[b"location"]
    assert first.startswith(b"https://alpha.") and second.startswith(b"https://gamma.")


def test_without_a_view_the_target_is_still_checked() -> None:
    status, _, body = no_view_answer(scope_of(launch(1)))
    assert (status, body) == (503, b"no view of the federation yet; retry shortly\n")
    assert no_view_answer(scope_of(b"/build/\x01"))[0] == 400
    assert no_view_answer(scope_of(launch(1), b"q" * 9000))[0] == 414
