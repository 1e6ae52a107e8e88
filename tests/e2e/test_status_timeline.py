"""The pictures of /status in a real browser: ten simulated members, a checker, a router and
headless Chromium at 1280 px. A member goes full, another goes down, one is drained, the
reference changes; each must appear in the strips where /history.json says it happened,
the page must swap in the news without reloading, and nothing may scroll sideways."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.store import Store, connect
from tests.support.chromium import Page, browser, chromium
from tests.support.procs import run_cli, wait_for
from tests.support.stack import Stack, named_members, running_stack

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
#: Named by host, as federations often are: names that give the browser no place to break a
#: line (the old table scrolled sideways at 1280 px with these).
PRIME, FULL, DOWN, DRAINED = (
    "gke.mybinder.org",
    "ovh2.mybinder.org",
    "notebooks.gesis.org",
    "curvenote.mybinder.org",
)
NAMES = (
    PRIME,
    FULL,
    DOWN,
    DRAINED,
    "2i2c.mybinder.org",
    "binder.pangeo.io",
    "turing.mybinder.org",
    "hub.psl.eu",
    "binderhub.ssl-hep.org",
    "mybinder.notebooks.example.org",
)

#: Each rect of a strip as the browser lays it out: its attributes, <title>, and where it
#: is drawn as a fraction of its strip's width.
RECTS = """
(strip => Array.from(document.querySelectorAll('#' + CSS.escape(strip) + ' svg rect')).map(r => {
  const box = r.ownerSVGElement.getBoundingClientRect(), own = r.getBoundingClientRect();
  return {cls: r.getAttribute('class'), state: r.dataset.state || null,
          start: Number(r.dataset.start || r.dataset.at), x: Number(r.getAttribute('x')),
          title: r.querySelector('title').textContent,
          left: (own.left - box.left) / box.width};
}))(%s)
"""


@pytest.fixture
def federation(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    """Ten members (the first the prime), all eligible, a checker and a router."""
    chromium()  # fail before starting anything when the browser is missing
    with (
        named_members(*NAMES) as members,
        running_stack(members, redis_url, key_prefix, tmp_path, prime=PRIME, timeout=30) as stack,
    ):
        yield stack


def _history(url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/history.json", params={"since": "1h"}, timeout=5)
    answer.raise_for_status()
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def _became(url: str, member: str, state: str) -> dict[str, Any] | None:
    return next(
        (
            e
            for e in _history(url)
            if e["event"] == "member_state_changed" and e["member"] == member and e["new"] == state
        ),
        None,
    )


async def _append(
    store_args: tuple[str, ...], router: str, started_at: float, counts: tuple[dict[str, int], ...]
) -> None:
    """Write one ``launches`` event per element of ``counts``, as a router does."""
    store = Store(connect(store_args[1]), store_args[3])
    try:
        for count in counts:
            event = {
                "event": "launches",
                "router": router,
                "at": time.time(),
                "started_at": started_at,
                "counts": count,
            }
            await store.append_history([event], 10_000)
    finally:
        await store.client.aclose()


def _segment(page: Page, strip: str, state: str, at: float) -> dict[str, Any]:
    """The segment of ``strip`` in ``state`` starting at ``at``, once the page shows it."""
    expression = (
        f"{RECTS % json.dumps(strip)}"
        f".find(r => r.state === {json.dumps(state)} && Math.abs(r.start - {at}) < 1e-3)"
    )
    found: dict[str, Any] = page.wait_for(
        expression, 20, f"a {state} segment of {strip} from {at} on the page"
    )
    return found


def test_the_strips_show_what_happened_where_it_happened(federation: Stack) -> None:
    url, tmp = federation.router, federation.workdir
    states = {name: member.state for name, member in federation.members.items()}
    with browser(tmp / "profile", tmp / "chromium.log") as chrome:
        page = chrome.open(f"{url}/status?window=1h")
        chrome.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            session=page.session,
        )
        page.wait_for(
            f"!!document.getElementById('strip-{NAMES[-1]}').querySelector('rect.seg')",
            20,
            "the strips",
        )
        page.evaluate("window.notReloaded = true")

        states[FULL].total_pods = 100
        full = wait_for(lambda: _became(url, FULL, "full"), 20, "a member full in history")
        states[DOWN].fault = "http500"
        down = wait_for(lambda: _became(url, DOWN, "unhealthy"), 20, "a member down in history")
        drained = run_cli("drain", DRAINED, "--reason", "disk upgrade", *federation.store_args)
        assert drained.returncode == 0, drained.stderr
        states[PRIME].binderhub_version = "2.0.0"

        def reference_moved() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in _history(url)
                    if e["event"] == "reference_changed"
                    and (e["new"] or {}).get("binderhub") == "2.0.0"
                ),
                None,
            )

        moved = wait_for(reference_moved, 20, "the reference change in history")
        drain = next(e for e in _history(url) if e["event"] == "drain")
        left = wait_for(lambda: _became(url, DRAINED, "drained"), 20, "the drain in history")

        # The page took in every change by itself, without a reload.
        full_seg = _segment(page, f"strip-{FULL}", "full", full["at"])
        down_seg = _segment(page, f"strip-{DOWN}", "unhealthy", down["at"])
        reference = _segment(page, "strip-reference", "fresh", moved["at"])
        drained_seg = _segment(page, f"strip-{DRAINED}", "drained", left["at"])
        assert page.evaluate("window.notReloaded") is True, "the page reloaded instead of swapping"

        window = page.evaluate(
            "(t => [Number(t.dataset.start), Number(t.dataset.end)])"
            "(document.querySelector('.timeline'))"
        )
        start, end = window
        assert end - start == pytest.approx(3600)
        for segment in (full_seg, down_seg, reference, drained_seg):
            fraction = (segment["start"] - start) / (end - start)
            assert 0.9 < fraction < 1, f"{segment} is not in the last minutes of the hour"
            assert segment["x"] == pytest.approx(1000 * fraction, abs=0.01)
            assert segment["left"] == pytest.approx(fraction, abs=0.002), "drawn elsewhere"
        assert f"{FULL}: full" in full_seg["title"] and "full: 100 pods" in full_seg["title"]
        assert (
            f"{DOWN}: unhealthy" in down_seg["title"]
            and "; ".join(down["reasons"]) in down_seg["title"]
        )
        assert (
            "binderhub=2.0.0" in reference["title"] and f"from prime {PRIME}" in reference["title"]
        )
        assert "disk upgrade" in drained_seg["title"]
        strip = [r for r in page.evaluate(RECTS % json.dumps(f"strip-{FULL}")) if r["state"]]
        became_full = next(i for i, r in enumerate(strip) if r["start"] == full_seg["start"])
        assert strip[became_full - 1]["state"] == "eligible"  # eligible up to then
        marks = [
            r for r in page.evaluate(RECTS % json.dumps("strip-reference")) if "mark" in r["cls"]
        ]
        assert [m["start"] for m in marks] == [moved["at"]]
        drain_marks = [
            r
            for r in page.evaluate(RECTS % json.dumps(f"strip-{DRAINED}"))
            if r["cls"] == "drain-mark"
        ]
        assert len(drain_marks) == 1 and "drained by an operator" in drain_marks[0]["title"]
        assert drain_marks[0]["left"] == pytest.approx(
            (drain["at"] - start) / (end - start), abs=0.003
        )

        # A router's launch counts (routers add theirs every minute; two are written here
        # so the test need not wait): the chart shows the differences, per member.
        router_id = "router-test:1"
        counts = ({PRIME: 4, FULL: 1}, {PRIME: 10, FULL: 2, DRAINED: 3})
        asyncio.run(_append(federation.store_args, router_id, start + 60, counts))
        shares = page.wait_for(
            f"(b => b && Array.from(b.querySelectorAll('rect.share')).map(r => "
            f"[r.dataset.member, Number(r.dataset.count), Number(r.getAttribute('width'))]))"
            f"(document.querySelector('.bar[data-router={json.dumps(router_id)}]'))",
            20,
            "the launch shares of the test router",
        )
        assert {member: (count, width) for member, count, width in shares} == {
            PRIME: (10, pytest.approx(1000 * 10 / 15, abs=0.001)),
            FULL: (2, pytest.approx(1000 * 2 / 15, abs=0.001)),
            DRAINED: (3, pytest.approx(1000 * 3 / 15, abs=0.001)),
        }

        # Ten members at 1280 px: nothing scrolls sideways.
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert page.evaluate("window.innerWidth") == 1280
        assert widths[0] <= widths[1], f"the page scrolls sideways at 1280 px: {widths}"

        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "status-timeline.png"
        png = chrome.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True},
            session=page.session,
        )["data"]
        shot.write_bytes(base64.b64decode(png))
        assert shot.stat().st_size > 20_000, (
            f"screenshot {shot} is only {shot.stat().st_size} bytes"
        )

    # Without JavaScript the same strips are in the page as served.
    served = httpx.get(f"{url}/status?window=1h", timeout=5).text
    assert f'data-state="full" data-start="{full["at"]}"' in served
    assert httpx.get(f"{url}/status?window=2h", timeout=5).status_code == 422
