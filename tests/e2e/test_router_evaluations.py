"""An idle federation costs a router nothing: its view is evaluated on change, not on a timer.

Real members, checker, router and redis-server. The members are checked every period and
nothing about them changes, so over many heartbeats the router's
``fedredirect_router_evaluations_total`` barely moves (a 0.5 s timer made two a second);
then a change is evaluated at once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import status, wait_for
from tests.support.stack import named_members, running_stack

PERIOD = 0.5
HEARTBEATS = 30  # periods of the checker's clock the idle federation is watched for


def evaluations(router_url: str) -> float:
    text = httpx.get(f"{router_url}/metrics", timeout=2).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fedredirect_router_evaluations_total":
                return sample.value
    raise AssertionError("no fedredirect_router_evaluations_total in /metrics")


def heartbeat_at(client: redis.Redis, prefix: str) -> float:
    raw = client.get(f"{prefix}:heartbeat")
    assert raw is not None
    return float(json.loads(raw)["at"])


def test_an_idle_federation_is_not_evaluated_again(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    weights = {"alpha": 50.0, "beta": 50.0}
    check = {"period": PERIOD, "timeout": PERIOD, "jitter": 0.0, "failed_period": 1}
    with (
        named_members("alpha", "beta") as members,
        redis.Redis.from_url(redis_url) as client,
        running_stack(
            members, redis_url, key_prefix, tmp_path, weights=weights, check=check
        ) as stack,
    ):
        url = stack.router
        start_at, before = heartbeat_at(client, key_prefix), evaluations(url)
        wait_for(
            lambda: heartbeat_at(client, key_prefix) >= start_at + HEARTBEATS * PERIOD,
            timeout=HEARTBEATS * PERIOD * 4,
            what=f"{HEARTBEATS} periods of heartbeats",
        )
        idle = evaluations(url) - before
        doc = status(url)
        # The figure to reach: at most 5 in 30 s, in proportion to the heartbeats watched.
        assert idle <= 5 * HEARTBEATS * PERIOD / 30, f"{idle} evaluations while idle"
        assert doc["targets"] == ["alpha", "beta"]  # idle indeed: nothing went stale
        assert doc["members"]["beta"]["record_age_seconds"] < 3 * PERIOD  # ages move

        members["beta"].state.total_pods = 1000  # beta full: a change, evaluated at once
        wait_for(lambda: status(url)["targets"] == ["alpha"], what="beta out as full")
        assert evaluations(url) > before + idle
