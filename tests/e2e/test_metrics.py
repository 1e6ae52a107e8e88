"""Both /metrics endpoints scraped across a member's transition eligible -> full -> eligible."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fedredirect.simulator import MemberSimState
from tests.support.procs import free_port, launch, status, wait_for
from tests.support.stack import named_members, running_stack

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=2).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def beta_eligible(metrics_url: str, eligible: int, what: str) -> Samples:
    """Scrape until beta's eligible gauge reads ``eligible``; the samples of that scrape."""

    def scraped() -> Samples | None:
        samples = scrape(metrics_url)
        return (
            samples
            if value(samples, "fedredirect_member_eligible", member="beta") == eligible
            else None
        )

    return wait_for(scraped, what=what)


def state_series(samples: Samples, member: str) -> dict[str, float]:
    return {
        dict(labels)["state"]: v
        for (name, labels), v in samples.items()
        if name == "fedredirect_member_state" and dict(labels)["member"] == member
    }


def test_metrics_follow_a_member_through_full_and_back(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    weights, metrics = {"alpha": 50.0, "beta": 50.0}, ("--metrics-port", str(port))
    # No slow start: the effective weights are then what capacity alone makes them.
    with (
        named_members("alpha", "beta") as members,
        running_stack(
            members,
            redis_url,
            key_prefix,
            tmp_path,
            weights=weights,
            checker_args=metrics,
            slow_start=0,
        ) as stack,
    ):
        beta, r = members["beta"], stack.router
        seen = beta_eligible(metrics_url, 1, "checker metrics show beta eligible")
        assert state_series(seen, "beta") == {
            "drained": 0,
            "stale": 0,
            "unreachable": 0,
            "unhealthy": 0,
            "failing": 0,
            "full": 0,
            "version_mismatch": 0,
            "eligible": 1,
        }
        assert value(seen, "fedredirect_member_pods", member="beta") == 10
        assert value(seen, "fedredirect_member_pod_quota", member="beta") == 100
        assert value(seen, "fedredirect_member_weight", member="beta") == 50
        # 10 of 100 pods and the default headroom of 10: 0.8 of its weight
        assert value(seen, "fedredirect_member_effective_weight", member="beta") == 40
        assert value(seen, "fedredirect_member_version_match", member="beta") == 1
        assert value(seen, "fedredirect_eligible_members") == 2
        assert value(seen, "fedredirect_reference_stale") == 0
        assert (value(seen, "fedredirect_reference_age_seconds") or 99) < 5
        info = [k for k in seen if k[0] == "fedredirect_reference_info"]
        assert len(info) == 1 and ("binderhub", MemberSimState.binderhub_version) in info[0][1]
        assert (
            "fedredirect_check_duration_seconds_count",
            (("endpoint", "health"), ("member", "beta")),
        ) in seen

        beta.state.total_pods = 100  # full
        full = beta_eligible(metrics_url, 0, "checker metrics show beta full")
        assert state_series(full, "beta")["full"] == 1
        assert sum(state_series(full, "beta").values()) == 1  # exactly one state at 1
        assert value(full, "fedredirect_member_pods", member="beta") == 100
        assert value(full, "fedredirect_member_effective_weight", member="beta") == 0
        assert value(full, "fedredirect_member_weight", member="beta") == 50
        assert value(full, "fedredirect_eligible_members") == 1

        beta.state.total_pods = 10
        back = beta_eligible(metrics_url, 1, "checker metrics show beta eligible again")
        assert state_series(back, "beta")["full"] == 0
        assert state_series(back, "beta")["eligible"] == 1

        # the router: redirects by member and reason, view age, fallback flag
        wait_for(lambda: len(status(r)["targets"]) == 2, what="router sees beta back")
        viewed = scrape(f"{r}/metrics")  # before any launch counts against its free pods
        assert value(viewed, "fedredirect_member_effective_weight", member="beta") == 40
        assert value(viewed, "fedredirect_member_effective_weight", member="alpha") == 40
        with httpx.Client() as client:
            for i in range(40):
                launch(client, r, f"/build/gh/org/m{i}/HEAD")
            launch(client, r, "/build/gh/org/m0/HEAD", cookies={"host": beta.url})
        routed = scrape(f"{r}/metrics")
        balanced = sum(
            value(routed, "fedredirect_redirects_total", member=m, reason="balancer") or 0
            for m in ("alpha", "beta")
        )
        assert balanced == 40
        assert value(routed, "fedredirect_redirects_total", member="beta", reason="cookie") == 1
        assert value(routed, "fedredirect_router_fallback_active") == 0
        assert (value(routed, "fedredirect_router_view_age_seconds") or 99) < 5
        httpx.get(f"{r}/status.json")
        assert any(
            name == "http_requests_total" and ("handler", "/status.json") in labels
            for name, labels in scrape(f"{r}/metrics")
        )
