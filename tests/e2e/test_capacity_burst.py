"""A burst between two checks cannot overfill a member (issue 18's capacity goal), through
real members, checker, routers and redis-server: a member with quota 20, 0 pods and
``pod_headroom: "10%"`` takes exactly 18 launches of a burst, however many routers share
it (each stops at its part, ``routers x own``), and the routers' /status.json and /metrics
say why."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fedredirect.simulator import MemberSimState
from tests.support.procs import launch, status, wait_for
from tests.support.stack import Stack, StartStack

#: small takes every launch it has room for (far the highest weight); big and other report
#: no quota and take the rest.
WEIGHTS = {"small": 1000.0, "big": 1.0, "other": 1.0}
LAUNCHES = 40
#: After the first check, the next comes 30 s later: no newer report lands in the burst.
CHECK = {"period": 30.0, "timeout": 1.0, "jitter": 0.0}
FULL = "full: 0 pods + 18 launches since + headroom 2 (10%) >= quota 20"


def gauges(router: str, name: str) -> dict[str, float]:
    """Each sample of gauge ``name`` on the router's /metrics, by its member label ("" for
    none)."""
    text = httpx.get(f"{router}/metrics", timeout=5).text
    return {
        sample.labels.get("member", ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def member_of(stack: Stack, response: httpx.Response, path: str) -> str:
    assert response.status_code == 307, response.text
    location = response.headers["location"]
    found = [n for n, m in stack.members.items() if location == m.url + path]
    assert len(found) == 1, location
    return found[0]


@pytest.mark.parametrize("routers", [2, 1])
def test_a_burst_between_two_checks_fills_a_member_to_its_quota_less_headroom(
    routers: int, start_stack: StartStack
) -> None:
    states = [
        MemberSimState("small", quota=20, total_pods=0),
        MemberSimState("big", quota=None),
        MemberSimState("other", quota=None),
    ]
    with (
        start_stack(
            WEIGHTS,
            states=states,
            prime="big",
            routers=routers,
            check=CHECK,
            pod_headroom="10%",
        ) as stack,
    ):
        for router in stack.routers:
            wait_for(
                lambda r=router: gauges(r, "fedredirect_router_routers") == {"": routers},
                20,
                f"{router} counts {routers} routers",
            )
        sent: Counter[tuple[str, str]] = Counter()
        with httpx.Client(timeout=5) as client:
            for i in range(LAUNCHES):
                router, path = stack.routers[i % routers], f"/build/gh/org/repo{i}/HEAD"
                sent[router, member_of(stack, launch(client, router, path), path)] += 1
        to_small = {router: sent[router, "small"] for router in stack.routers}
        assert to_small == dict.fromkeys(stack.routers, 18 // routers)
        assert sum(sent.values()) == LAUNCHES
        for router in stack.routers:
            small = status(router)["members"]["small"]
            assert small["state"] == "full" and FULL in small["reasons"], small
            since = gauges(router, "fedredirect_router_launches_since_report")
            assert since == {"small": 18 // routers}
