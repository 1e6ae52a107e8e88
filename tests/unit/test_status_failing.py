"""A member ejected for failing its launches, as `fedredirect status` prints it and /why
explains it: the state, its reason with the numbers, until when, and the metrics note of
a member whose /metrics cannot be read (judged without them, never excluded for it)."""

from __future__ import annotations

from dataclasses import replace

from fedredirect.status import render_status
from shared.config import parse_config
from shared.evaluate import View, evaluate
from shared.explain import explain
from shared.records import CheckerHeartbeat, LaunchOutcomes
from tests.support.builders import NOW, make_obs, url

EJECTION = "launches failing: 12 of 20 failed in the last 60s (60% > 25%); ejected for 60s"


def federation() -> View:
    """a: metrics not read; b: ejected until NOW + 30, its second ejection in a row;
    c: its /metrics answered 502 this period (the counts are the last it read)."""
    config = parse_config({"members": {n: {"url": url(n), "weight": 10} for n in "abc"}})
    ejected = LaunchOutcomes(
        20, 12, 60.0, NOW, ejected_until=NOW + 30, ejection_reason=EJECTION, ejections=2
    )
    unread = LaunchOutcomes(7, 0, 45.0, NOW - 10, error="metrics answered HTTP 502")
    observations = {
        "a": make_obs("a"),
        "b": replace(make_obs("b"), outcomes=ejected),
        "c": replace(make_obs("c"), outcomes=unread),
    }
    return evaluate(config, observations, {}, CheckerHeartbeat("c1", NOW), NOW)


def test_the_command_line_shows_launches_the_ejection_and_the_metrics_note() -> None:
    lines = render_status(federation()).splitlines()
    header = next(line for line in lines if line.startswith("MEMBER"))
    assert header.split() == [
        "MEMBER", "STATE", "PODS", "LAUNCHES", "RECORD", "VERSIONS", "WEIGHT", "REASONS",
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1 :] if line}
    assert rows["a"].split()[1:4] == ["eligible", "10/100", "-"]
    assert rows["b"].split()[1:6] == ["failing", "10/100", "12/20", "failed", "in"]
    assert rows["b"].endswith(EJECTION) and "  10 -> 0 (excluded: failing)  " in rows["b"]
    assert rows["c"].split()[1:6] == ["eligible", "10/100", "0/7", "failed", "in"]
    assert "10 -> 8 (capacity: 80 of 100 pods free, x0.8)  -" in rows["c"]
    assert "b: ejected until 2023-11-14 22:13:50 UTC (ejection 2 in a row)" in lines
    assert "c: metrics not read (metrics answered HTTP 502): judged without them" in lines
    assert lines[-1] == "launches go to: a, c"


def test_why_gives_the_ejection_reason_and_its_end() -> None:
    candidates = {c["member"]: c for c in explain(federation(), "/build/gh/o/r/HEAD")["candidates"]}
    assert (candidates["b"]["in"], candidates["b"]["why"]) == (False, EJECTION)
    assert candidates["b"]["ejected_until"] == NOW + 30
    assert candidates["c"]["in"] is True and candidates["c"]["ejected_until"] is None
    assert candidates["a"]["ejected_until"] is None


def test_an_ejection_over_is_neither_printed_nor_explained() -> None:
    view = federation()
    later = evaluate(
        view.config,
        {m.name: replace(make_obs(m.name, NOW + 30), outcomes=m.outcomes) for m in view.members},
        {},
        CheckerHeartbeat("c1", NOW + 30),
        NOW + 30,
    )
    assert "ejected until" not in render_status(later)
    why = {c["member"]: c for c in explain(later, "/build/gh/o/r/HEAD")["candidates"]}
    assert (why["b"]["in"], why["b"]["ejected_until"]) == (True, None)
