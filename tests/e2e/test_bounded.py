"""``load_balancer: bounded`` through real routers: a hot repository keeps its member up to
that member's bound of the router's recent launches and spills over to the next in its
order; /why, /status.json, /status and /metrics say so; the sticky cookie still pins.

Real members, checker, two routers and redis-server, as a user runs them."""

from __future__ import annotations

import math
from collections import Counter
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fedredirect.memberstate import MemberSimState
from tests.support.procs import launch, status
from tests.support.stack import Stack, StartStack

WEIGHTS = {"alpha": 50.0, "beta": 30.0, "gamma": 20.0}
HOT = "/build/gh/org/hot/HEAD"
LAUNCHES = 100


def member_of(stack: Stack, response: httpx.Response) -> str:
    assert response.status_code == 307, response.text
    location = response.headers["location"]
    found = [n for n, m in stack.members.items() if location == m.url + HOT]
    assert len(found) == 1, location
    return found[0]


def passed_over(router: str) -> dict[str, float]:
    text = httpx.get(f"{router}/metrics", timeout=5).text
    return {
        sample.labels["member"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fedredirect_router_launches_passed_over_total"
    }


def why(router: str, **cookies: str) -> dict[str, Any]:
    response = httpx.get(f"{router}/why", params={"path": HOT}, cookies=cookies, timeout=5)
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    return doc


def test_a_hot_repository_spills_over_past_its_members_bound(start_stack: StartStack) -> None:
    with (
        # members without a quota and no slow start: launches split by configured weight
        start_stack(
            WEIGHTS,
            states=[MemberSimState(name, quota=None) for name in WEIGHTS],
            routers=2,
            load_balancer="bounded",
            bounded_load={"factor": 1.25, "window": 600},
            slow_start=0,
        ) as stack,
        # a client that keeps no cookie: each launch is a new visitor's
        httpx.Client(cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[]))) as client,
    ):
        router, other = stack.routers
        order = [c["member"] for c in why(router)["bounded"]["order"]]
        assert sorted(order) == sorted(WEIGHTS)
        first, second, third = order
        shares = {n: w / sum(WEIGHTS.values()) for n, w in WEIGHTS.items()}

        sent = Counter(member_of(stack, launch(client, router, HOT)) for _ in range(LAUNCHES))
        # the first and the second took their bounds, give or take one; the third the rest
        for member in (first, second):
            assert abs(sent[member] - 1.25 * shares[member] * LAUNCHES) <= 1, sent
        assert sent[third] == LAUNCHES - sent[first] - sent[second] > 0, sent

        # /why: the order against the bounds, and who the next launch passes over
        answer = why(router)
        bounded = answer["bounded"]
        assert bounded["launches"] == LAUNCHES and bounded["factor"] == 1.25
        rows = bounded["order"]
        assert [row["member"] for row in rows] == order
        assert {row["member"]: row["launches"] for row in rows} == dict(sent)
        for row in rows:
            assert row["bound"] == math.ceil(1.25 * shares[row["member"]] * (LAUNCHES + 1))
        chosen = next(i for i, row in enumerate(rows) if row["launches"] < row["bound"])
        assert [row["passed_over"] for row in rows] == [i < chosen for i in range(3)]
        assert answer["pick"]["member"] == order[chosen]
        assert member_of(stack, launch(client, router, HOT)) == order[chosen]
        sent[order[chosen]] += 1
        total = LAUNCHES + 1

        # /status.json: each member's part of this router's window; the metric counts
        members = status(router)["members"]
        for name in WEIGHTS:
            recent = members[name]["recent_launches"]
            assert recent["launches"] == sent[name]
            assert recent["share"] == sent[name] / total
            assert recent["weighted_share"] == shares[name]
            assert recent["window_seconds"] == 600
        assert members[first]["recent_launches"]["passed_over"] == total - sent[first]
        assert passed_over(router) == {first: total - sent[first], second: sent[third]}
        page = httpx.get(f"{router}/status", timeout=5).text
        assert "recent share (last 600s)" in page

        # the other router bounds its own launches: its window is empty, so the first
        assert member_of(stack, launch(client, other, HOT)) == first
        assert status(other)["members"][first]["recent_launches"]["launches"] == 1

        # the sticky cookie pins its member, past its bound, and is counted
        url = stack.members[first].url
        pinned = launch(client, router, HOT, cookies={"host": url})
        assert member_of(stack, pinned) == first
        assert status(router)["members"][first]["recent_launches"]["launches"] == sent[first] + 1
        assert passed_over(router)[first] == total - sent[first]  # a cookie passes nobody over
        assert why(router, host=url)["pick"]["reason"] == "cookie"
