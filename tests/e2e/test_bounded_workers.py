"""``load_balancer: bounded`` in ``fedredirect router --workers 2``: each worker bounds its
own launches, and /metrics sums the launches every worker passed a member over for.

A real redis-server, three simulated members, a checker, and the router as a subprocess with
its prometheus-client multiprocess directory in the test's tmp_path. Every launch is a new
connection, so the kernel hands it to whichever worker accepts first."""

from __future__ import annotations

from collections import Counter
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import wait_for
from tests.support.stack import running_workers

WORKERS = 2
LAUNCHES = 200
HOT = "/build/gh/org/hot/HEAD"


def passed_over(client: httpx.Client) -> dict[str, float]:
    response = client.get("/metrics")
    response.raise_for_status()
    return {
        sample.labels["member"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "fedredirect_router_launches_passed_over_total"
    }


def test_every_workers_passed_over_launches_add_up(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    with (
        running_workers(
            {"alpha": 50.0, "beta": 30.0, "gamma": 20.0},
            redis_url,
            key_prefix,
            tmp_path,
            WORKERS,
            load_balancer="bounded",
            bounded_load={"factor": 1.25, "window": 600},
        ) as (stack, _router),
        httpx.Client(
            base_url=stack.router,
            timeout=5,
            headers={"connection": "close"},  # a new connection, any worker, each time
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # no sticky cookie
        ) as client,
    ):
        why = client.get("/why", params={"path": HOT}).json()
        first, second, third = (row["member"] for row in why["bounded"]["order"])
        sent: Counter[str] = Counter()
        for _ in range(LAUNCHES):
            response = client.get(HOT)
            assert response.status_code == 307, response.text
            location = response.headers["location"]
            sent.update(n for n, m in stack.members.items() if location == m.url + HOT)
        assert sum(sent.values()) == LAUNCHES and sent[third] > 0, sent
        # whichever worker answers, the scrape holds every worker's count
        expected = {first: LAUNCHES - sent[first], second: sent[third]}
        wait_for(lambda: passed_over(client) == expected, 10, f"passed over {expected}")
        assert all(passed_over(client) == expected for _ in range(3 * WORKERS))
