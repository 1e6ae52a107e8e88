"""The reasons the status page shows, word for word: operators read them, alerts link them.

Each rule's reason for the cases the other tests leave out: no reason given, several
reasons, no answer at all, and the fallback naming whom it sends launches to.
"""

from __future__ import annotations

import pytest

from shared.evaluate import View
from shared.records import Drain
from tests.support.builders import make_config, make_obs
from tests.support.views import member_of, run


def view_of(status: str | None, reasons: list[str] | None, drain_reason: str | None = None) -> View:
    config = make_config({"a": 1, "b": 1}, prime=None)
    obs = {"a": make_obs("a", status=status, reasons=reasons), "b": make_obs("b")}
    drains = {} if drain_reason is None else {"a": Drain("a", drain_reason, 0.0)}
    return run(config, obs, drains)


@pytest.mark.parametrize(
    ("status", "reasons", "shown"),
    [
        ("unhealthy", [], "health check failed"),
        ("unhealthy", ["check failed: Docker registry"], "check failed: Docker registry"),
        ("unhealthy", ["check failed: A", "check failed: B"], "check failed: A; check failed: B"),
        ("unreachable", [], "health endpoint unreachable"),
        ("unreachable", ["connect timeout", "retry: refused"], "connect timeout; retry: refused"),
        (None, None, "health not observed yet"),
    ],
)
def test_health_reasons(status: str | None, reasons: list[str] | None, shown: str) -> None:
    a = member_of(view_of(status, reasons), "a")
    assert a.reasons == (shown,)
    assert a.state == ("unhealthy" if status is None else status)


@pytest.mark.parametrize(
    ("given", "shown"),
    [("", "drained by an operator"), ("k8s upgrade", "drained by an operator: k8s upgrade")],
)
def test_drain_reason(given: str, shown: str) -> None:
    a = member_of(view_of("ok", [], drain_reason=given), "a")
    assert (a.state, a.reasons) == ("drained", (shown,))


def test_fallback_all_names_everyone_it_sends_launches_to() -> None:
    config = make_config({"a": 1, "b": 2, "c": 3}, prime=None)
    obs = {
        "a": make_obs("a", status="unhealthy"),
        "b": make_obs("b", status="unreachable"),
        "c": make_obs("c", pods=95),
    }
    view = run(config, obs)
    assert view.fallback_reason == "no member is eligible; fallback 'all' sends launches to a, c"


def test_fallback_to_nobody_says_503() -> None:
    config = make_config({"a": 1}, prime=None, fallback="none")
    view = run(config, {"a": make_obs("a", status="unhealthy")})
    assert (
        view.fallback_reason
        == "no member is eligible; fallback 'none' sends launches to nobody (503)"
    )
