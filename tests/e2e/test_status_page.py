"""/status as an operator sees it: real members, checker, router, and a headless Chromium.

Chromium is a hard requirement of this test (Debian package ``chromium``): a missing
browser fails it, so CI cannot go green without ever rendering the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.build_stream import last_phase
from tests.support.chromium import chromium, run_chromium
from tests.support.dom import Dom
from tests.support.procs import launch, router, status, wait_for
from tests.support.stack import Stack, named_members, running_stack

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture
def stack(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    """alpha (prime) eligible, beta full, gamma on another binderhub version, delta failing
    every launch (its /metrics say so: ejected)."""
    chromium()  # fail before starting anything when the browser is missing
    with (
        named_members("alpha", "beta", "gamma", "delta") as members,
        running_stack(
            members,
            redis_url,
            key_prefix,
            tmp_path,
            weights={"alpha": 50.0, "beta": 30.0, "gamma": 20.0, "delta": 20.0},
            eligible=0,  # waited for below, with the logs' tails if it never comes
            # a window and an ejection that outlast the test; 6 launches are enough to judge
            outcomes={"window": 60, "min_launches": 5, "base_ejection": 300, "max_ejection": 300},
        ) as running,
    ):
        url = running.router
        try:
            wait_for(lambda: len(status(url)["targets"]) == 4, 30, "four eligible members")
            with httpx.Client() as client:  # some traffic, so the share column has numbers
                for i in range(30):
                    assert launch(client, url, f"/build/gh/org/r{i}/HEAD").status_code == 307
            members["beta"].state.total_pods = 100
            members["gamma"].state.binderhub_version = "9.9.9"
            delta = members["delta"].url
            httpx.post(f"{delta}/_sim", json={"launch_failure_share": 1.0}).raise_for_status()
            with httpx.Client(timeout=10) as client:  # launched at delta itself: all fail
                assert [
                    last_phase(f"{delta}/build/gh/org/f{i}/HEAD", client) for i in range(6)
                ] == ["failed"] * 6

            def degraded() -> bool:
                doc = status(url)["members"]
                return bool(
                    doc["beta"]["state"] == "full"
                    and doc["gamma"]["state"] == "version_mismatch"
                    and doc["delta"]["state"] == "failing"
                )

            wait_for(degraded, 30, "beta full, gamma version_mismatch, delta failing")
        except AssertionError as exc:
            logs = {
                p.name: p.read_text()[-1500:] for p in (running.checker_log, running.router_log())
            }
            raise AssertionError(f"{exc}\nlog tails: {logs}") from exc
        yield running


def test_status_page_renders_full_mismatched_and_failing_members_in_chromium(
    stack: Stack,
) -> None:
    url = f"{stack.router}/status"
    tmp = stack.workdir
    assert httpx.get(url).headers["content-type"].startswith("text/html")

    dom = Dom(run_chromium(tmp / "profile-dom", "--dump-dom", url))
    beta, gamma, alpha, delta = (
        dom.by_id(f"member-{n}") for n in ("beta", "gamma", "alpha", "delta")
    )
    assert beta and gamma and alpha and delta, "member rows missing"
    assert beta[0]["data-state"] == "full"
    assert "full:" in beta[1] and "100 / 100" in beta[1]
    assert [text for _attrs, text in dom.by_class("state-full")] == ["full"]
    assert gamma[0]["data-state"] == "version_mismatch"
    assert alpha[0]["data-state"] == "eligible" and "prime" in alpha[1]
    assert delta[0]["data-state"] == "failing"
    assert re.search(r"launches failing: (\d) of \1 failed", delta[1]), delta[1]
    assert [text for _attrs, text in dom.by_class("state-failing")] == ["failing"]
    launches = {a.get("data-failures"): text for a, text in dom.by_class("launches")}
    assert launches["6"].startswith("6 / 6 failed100% in ") and "ejected until" in launches["6"]
    assert launches["0"].startswith("0 / 0 failed")  # the others: metrics read, no launch
    diffs = dom.by_class("version-diff")
    assert [(attrs["data-key"], text) for attrs, text in diffs] == [("binderhub", "9.9.9")]
    assert dom.by_class("banner") == []

    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "status-page.png"
    shot.unlink(missing_ok=True)
    run_chromium(tmp / "profile-shot", f"--screenshot={shot}", "--window-size=1400,900", url)
    assert shot.exists(), f"chromium wrote no screenshot at {shot}"
    assert shot.stat().st_size > 10_000, f"screenshot {shot} is only {shot.stat().st_size} bytes"


def test_status_page_without_a_view_is_a_503_saying_why(redis_url: str, key_prefix: str) -> None:
    with router(redis_url, key_prefix) as url:
        response = httpx.get(f"{url}/status")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    found = Dom(response.text).by_id("banner-no-view")
    assert found is not None and "no snapshot" in found[1]
