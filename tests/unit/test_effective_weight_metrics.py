"""``fedredirect_member_effective_weight`` on both /metrics: the weight launches are balanced
by now (configured weight x capacity share x slow-start factor, 0 when excluded), beside the
configured ``fedredirect_member_weight``, which does not move."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from checker.metrics import member_metrics
from router.app import create_app
from router.redirect import RedirectApp
from shared.evaluate import evaluate
from shared.records import CheckerHeartbeat, MemberObservation
from shared.slowstart import ramp_factor
from shared.store import Snapshot
from tests.support.builders import FULL_PODS, NOW, make_config, make_obs

# alpha: 10 of 100 pods, so 80 free past the headroom of 10: 0.8 of its weight 50.
# beta: the same, and eligible again 30 s ago: step 1 of its 300 s slow start.
# gamma: full, so excluded: 0 whatever its weight.
EXPECTED = {"alpha": 40.0, "beta": 40.0 * ramp_factor(1), "gamma": 0.0}
CONFIGURED = {"alpha": 50.0, "beta": 50.0, "gamma": 30.0}


def observations() -> dict[str, MemberObservation]:
    return {
        "alpha": make_obs("alpha"),
        "beta": replace(make_obs("beta"), eligible_since=NOW - 30),
        "gamma": make_obs("gamma", pods=FULL_PODS),
    }


def by_member(text: str, name: str) -> dict[str, float]:
    return {
        s.labels["member"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def scrape(router: RedirectApp) -> str:
    """The router's /metrics, asked in-process (no lifespan: it serves the view it holds)."""

    async def get() -> str:
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return (await client.get("/metrics")).text

    return asyncio.run(get())


def test_the_checker_exports_each_members_effective_weight() -> None:
    view = evaluate(make_config(), observations(), {}, CheckerHeartbeat("c", NOW), NOW)
    samples = {
        (s.name, s.labels["member"]): s.value
        for family in member_metrics(view)
        for s in family.samples
        if "member" in s.labels
    }
    effective = {m: samples["fedredirect_member_effective_weight", m] for m in EXPECTED}
    configured = {m: samples["fedredirect_member_weight", m] for m in CONFIGURED}
    assert effective == pytest.approx(EXPECTED)
    assert configured == CONFIGURED
    assert effective["beta"] < 0.15 * configured["beta"]  # a ramp starts near a tenth


def test_the_router_exports_the_effective_weights_of_its_view() -> None:
    snapshot = Snapshot(make_config(), observations(), CheckerHeartbeat("c", NOW))
    text = scrape(create_app(None, snapshot=snapshot, clock=lambda: NOW))
    assert by_member(text, "fedredirect_member_effective_weight") == pytest.approx(EXPECTED)
    assert by_member(text, "fedredirect_member_weight") == {}  # the checker's alone


def test_a_router_without_a_view_exports_no_effective_weight() -> None:
    text = scrape(create_app(None, clock=lambda: NOW))
    assert by_member(text, "fedredirect_member_effective_weight") == {}


def test_a_routers_own_launches_take_its_effective_weight_not_the_checkers() -> None:
    """alpha alone, 0 of 20 pods with a 10% headroom: room for 18 launches, 0.9 of its
    weight. After 18 launches from this router it is full in the router's view (0) until
    its next report; the checker, which sent none, still gives it 45."""
    config = make_config({"alpha": 50}, pod_headroom="10%", slow_start=0)
    records = {"alpha": make_obs("alpha", pods=0, quota=20)}
    checker = evaluate(config, records, {}, CheckerHeartbeat("c", NOW), NOW)
    router = create_app(None, snapshot=Snapshot(config, records, None), clock=lambda: NOW)
    before = by_member(scrape(router), "fedredirect_member_effective_weight")

    async def launch_18() -> list[int]:
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return [(await client.get(f"/build/gh/org/r{i}/HEAD")).status_code for i in range(18)]

    assert asyncio.run(launch_18()) == [307] * 18
    after = by_member(scrape(router), "fedredirect_member_effective_weight")
    assert [m.effective_weight for m in checker.members] == [before["alpha"]] == [45.0]
    assert after == {"alpha": 0.0}
