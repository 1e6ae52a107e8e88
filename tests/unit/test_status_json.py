"""The /status.json document: every field's value, and the documented schema it keeps to.

Operators script against /status.json, so its shape is a public interface: each view the
core can evaluate must validate against docs/status.schema.json, and docs/status-json.md
must describe exactly the fields that schema allows.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from shared.capacity import SentLaunches
from shared.config import parse_config
from shared.evaluate import View, evaluate
from shared.records import CheckerHeartbeat, Drain, LaunchOutcomes, MemberObservation
from shared.slowstart import ramp_factor
from shared.status import (
    LaunchCounts,
    launch_counts,
    outcomes_json,
    status_document,
    view_to_json,
)
from shared.store import Snapshot
from tests.support.builders import (
    FULL_PODS,
    NOW,
    V1,
    V2,
    federation,
    federations,
    make_config,
    make_obs,
    url,
)
from tests.support.views import views_with_weights

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "status.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(doc: object) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)
    ]


# --- one federation in every state, every field pinned ---------------------------------------


EXPECTED_MEMBERS: dict[str, dict[str, Any]] = {
    "alpha": {
        "url": "https://alpha.example.org",
        "health_url": "https://alpha.example.org/health",
        "versions_url": "https://alpha.example.org/versions",
        "weight": 50,
        "effective_weight": 40.0,  # 63 of its 80 pods free, in twentieths: 16/20
        "prime": True,
        "state": "eligible",
        "eligible": True,
        "reasons": [],
        "excluded_by": [],
        "versions": V1,
        "version_differences": [],
        "compatible_versions": {},
        "total_pods": 7,
        "quota": 80,
        "record_age_seconds": 2.0,
        "health_age_seconds": 2.0,
        "versions_age_seconds": 12.0,
        "last_error": None,
        "outcomes": None,
        "capacity": {"share": 0.8, "free_pods": 63, "pending_launches": 0},  # 80 - 7 - 10
        "slow_start": None,  # eligible long ago
        "weight_reasons": ["capacity: 63 of 80 pods free, x0.8"],
        "recent_launches": None,
        "launch_share": None,
    },
    "beta": {
        "url": "https://beta.example.org",
        "health_url": "https://beta.example.org/health",
        "versions_url": "https://beta.example.org/versions",
        "weight": 40,
        "effective_weight": 0.0,
        "prime": False,
        "state": "full",
        "eligible": False,
        "reasons": ["full: 95 pods + headroom 10 >= quota 100"],
        "excluded_by": ["full"],
        "versions": V1,
        "version_differences": [],
        "compatible_versions": {},
        "total_pods": FULL_PODS,
        "quota": 100,
        "record_age_seconds": 3.0,
        "health_age_seconds": 3.0,
        "versions_age_seconds": 20.0,
        "last_error": "versions: versions answered HTTP 502",
        "outcomes": None,
        "capacity": {"share": 0.0, "free_pods": 0, "pending_launches": 0},
        "slow_start": None,
        "weight_reasons": ["excluded: full"],
        "recent_launches": None,
        "launch_share": None,
    },
    "gamma": {
        "url": "https://gamma.example.org",
        "health_url": "https://gamma.example.org/health",
        "versions_url": "https://gamma.example.org/versions",
        "weight": 30,
        "effective_weight": 0.0,
        "prime": False,
        "state": "drained",
        "eligible": False,
        "reasons": [
            "drained by an operator: rack move",
            "version differs from the reference (prime alpha) on: binderhub, builder",
        ],
        "excluded_by": ["drained", "version_mismatch"],
        "versions": V2,
        "version_differences": ["binderhub", "builder"],
        "compatible_versions": {},
        "total_pods": 10,
        "quota": 100,
        "record_age_seconds": 4.0,
        "health_age_seconds": 4.0,
        "versions_age_seconds": 0.0,
        "last_error": None,
        "outcomes": None,
        "capacity": {"share": 0.8, "free_pods": 80, "pending_launches": 0},  # drained, not full
        "slow_start": None,
        "weight_reasons": ["excluded: drained"],
        "recent_launches": None,
        "launch_share": None,
    },
    "delta": {
        "url": "https://delta.example.org",
        "health_url": "https://delta.example.org/health",
        "versions_url": "https://delta.example.org/versions",
        "weight": 20,
        "effective_weight": 0.0,
        "prime": False,
        "state": "stale",
        "eligible": False,
        "reasons": [
            "no observation published yet",
            "versions not observed recently; cannot compare with the reference",
        ],
        "excluded_by": ["stale", "version_mismatch"],
        "versions": None,
        "version_differences": ["*"],
        "compatible_versions": {},
        "total_pods": None,
        "quota": None,
        "record_age_seconds": None,
        "health_age_seconds": None,
        "versions_age_seconds": None,
        "last_error": None,
        "outcomes": None,
        "capacity": None,  # no report of pods and quota
        "slow_start": None,
        "weight_reasons": ["excluded: stale"],
        "recent_launches": None,
        "launch_share": None,
    },
}


def test_every_field_of_a_federation_in_every_state() -> None:
    config, observations, drains = federation()
    heartbeat = CheckerHeartbeat("checker-1", NOW - 5)
    doc = view_to_json(evaluate(config, observations, drains, heartbeat, NOW))
    assert doc == {
        "evaluated_at": NOW,
        "reference": {
            "policy": "prime",
            "versions": V1,
            "compared_keys": ["binderhub", "builder"],
            "source": "prime alpha",
            "observed_at": NOW - 12,
            "age_seconds": 12.0,
            "max_age_seconds": 30.0,
            "stale": False,
            "stale_reason": None,
        },
        "version_gate": {"suspended": False, "reason": None},
        "fallback": {"policy": "prime", "active": False, "reason": None},
        "outage": {
            "policy": "keep",
            "max_staleness_seconds": 40.0,
            "active": False,
            "reason": None,
        },
        "targets": ["alpha"],
        "checker": {"checker_id": "checker-1", "heartbeat_age_seconds": 5.0},
        "members": EXPECTED_MEMBERS,
    }
    assert list(doc["members"]) == ["alpha", "beta", "gamma", "delta"]  # config order
    assert json.loads(json.dumps(doc)) == doc  # nothing but JSON types (no tuples)
    assert errors(doc) == []


def test_a_degraded_federation_reports_stale_reference_fallback_and_outage() -> None:
    """The prime's versions are old (stale reference, gate suspended), nobody is eligible
    (fallback to the prime), and the checker went silent (outage, policy keep)."""
    config, observations, drains = federation()
    observations = {
        "alpha": make_obs("alpha", pods=FULL_PODS, versions_age=100, now=NOW - 50),
        "beta": make_obs("beta", status="unreachable", now=NOW - 50),
    }
    heartbeat = CheckerHeartbeat("checker-2", NOW - 50)
    doc = view_to_json(evaluate(config, observations, drains, heartbeat, NOW))
    assert doc["reference"] == {
        "policy": "prime",
        "versions": V1,
        "compared_keys": ["binderhub", "builder"],
        "source": "prime alpha",
        "observed_at": NOW - 150,
        "age_seconds": 150.0,
        "max_age_seconds": 30.0,
        "stale": True,
        "stale_reason": "the prime's versions were not observed in the last 30s",
    }
    assert doc["version_gate"] == {
        "suspended": True,
        "reason": "reference version is stale: "
        "the prime's versions were not observed in the last 30s",
    }
    assert doc["fallback"] == {
        "policy": "prime",
        "active": True,
        "reason": "no member is eligible; fallback 'prime' sends launches to alpha",
    }
    assert doc["outage"] == {
        "policy": "keep",
        "max_staleness_seconds": 40.0,
        "active": True,
        "reason": "checker heartbeat is older than 40s: serving the last known good view",
    }
    assert doc["targets"] == ["alpha"]
    assert doc["checker"] == {"checker_id": "checker-2", "heartbeat_age_seconds": 50.0}
    assert doc["members"]["alpha"]["state"] == "full"
    assert doc["members"]["beta"]["state"] == "unreachable"
    assert doc["members"]["beta"]["reasons"] == ["refused"]
    assert doc["members"]["alpha"]["record_age_seconds"] == 50.0
    assert errors(doc) == []


def test_a_moved_member_shows_the_urls_that_answered() -> None:
    config, observations, drains = federation()
    moved = "https://alpha-2.example.org"
    observations["alpha"] = replace(
        observations["alpha"], health_url=f"{moved}/health", versions_url=f"{moved}/versions"
    )
    observations["beta"] = replace(observations["beta"], versions_url=f"{moved}/beta/versions")
    members = view_to_json(evaluate(config, observations, drains, None, NOW))["members"]
    assert (members["alpha"]["health_url"], members["alpha"]["versions_url"]) == (
        f"{moved}/health",
        f"{moved}/versions",
    )
    assert (members["beta"]["health_url"], members["beta"]["versions_url"]) == (
        url("beta") + "/health",
        f"{moved}/beta/versions",
    )
    assert members["alpha"]["url"] == url("alpha")  # redirects still go to the configured URL
    assert members["delta"]["health_url"] == url("delta") + "/health"  # no record yet


def test_a_view_without_heartbeat_has_no_checker() -> None:
    config, observations, drains = federation()
    doc = view_to_json(evaluate(config, observations, drains, None, NOW))
    assert doc["checker"] == {"checker_id": None, "heartbeat_age_seconds": None}
    assert errors(doc) == []


def test_pinned_reference_has_no_age() -> None:
    config = parse_config(
        {
            "members": {"a": {"url": url("a"), "weight": 1}},
            "versions": {"reference": "pinned", "pinned": V2, "keys": ["binderhub"]},
        }
    )
    doc = view_to_json(evaluate(config, {"a": make_obs("a", versions=V2)}, {}, None, NOW))
    assert doc["reference"] == {
        "policy": "pinned",
        "versions": V2,
        "compared_keys": ["binderhub"],
        "source": "pinned in config",
        "observed_at": None,
        "age_seconds": None,
        "max_age_seconds": 30.0,
        "stale": False,
        "stale_reason": None,
    }
    assert errors(doc) == []


# --- every view keeps to the schema ------------------------------------------------------------

heartbeats = st.none() | st.builds(
    lambda age, checker: CheckerHeartbeat(checker, NOW - age),
    st.sampled_from([0.0, 29.0, 30.0, 31.0, 200.0]) | st.floats(0, 500),
    st.sampled_from(["checker-a", "host-1:42"]),
)


@settings(max_examples=100, deadline=None)
@given(fed=federations(), heartbeat=heartbeats, policy=st.sampled_from(["keep", "all"]))
def test_every_evaluated_view_matches_the_documented_schema(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]],
    heartbeat: CheckerHeartbeat | None,
    policy: str,
) -> None:
    raw, observations, drains = fed
    config = parse_config(raw | {"outage": {"policy": policy}}, "hypothesis")
    view = evaluate(config, observations, drains, heartbeat, NOW)
    doc = view_to_json(view)
    assert errors(doc) == []
    assert json.loads(json.dumps(doc)) == doc
    assert_document_is_the_view(doc, view)


def assert_document_is_the_view(doc: dict[str, Any], view: View) -> None:
    """Each field says what the view decided (the router redirects from the same view)."""
    assert doc["targets"] == [t.name for t in view.targets]
    assert doc["fallback"]["active"] == view.fallback_active
    assert doc["outage"]["active"] == view.outage_active
    assert doc["version_gate"]["suspended"] == view.gate_suspended
    assert doc["reference"]["stale"] == view.reference.stale
    assert list(doc["members"]) == [m.name for m in view.members]
    for m in view.members:
        row = doc["members"][m.name]
        assert row["state"] == m.state
        assert row["eligible"] == m.eligible
        assert row["excluded_by"] == list(m.excluded_by)
        assert row["reasons"] == list(m.reasons)
        assert row["effective_weight"] == m.effective_weight


# --- the schema is strict, and documented field by field --------------------------------------


def known_document() -> dict[str, Any]:
    config, observations, drains = federation()
    return view_to_json(evaluate(config, observations, drains, None, NOW))


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("top level", lambda d: d.update(extra=1)),
        ("top level", lambda d: d.pop("targets")),
        ("reference", lambda d: d["reference"].update(version="1")),
        ("reference", lambda d: d["reference"].update(policy="latest")),
        ("member", lambda d: d["members"]["alpha"].update(healthy=True)),
        ("member", lambda d: d["members"]["alpha"].pop("quota")),
        ("member", lambda d: d["members"]["alpha"].update(state="up")),
        ("member", lambda d: d["members"]["alpha"].update(total_pods=-1)),
        ("member", lambda d: d["members"]["alpha"].update(record_age_seconds=-1)),
        ("member", lambda d: d["members"]["alpha"].update(excluded_by=["eligible"])),
        ("member", lambda d: d["members"]["alpha"].update(url="alpha.example.org")),
        ("fallback", lambda d: d["fallback"].update(policy="random")),
        ("outage", lambda d: d["outage"].update(active="no")),
        ("redirects", lambda d: d.update(redirects=[{"member": "a", "reason": "x", "count": 1}])),
    ],
)
def test_the_schema_rejects_a_changed_shape(where: str, change: Any) -> None:
    doc = known_document()
    change(doc)
    assert errors(doc), f"{where}: the schema accepted a changed document"


def test_the_router_keys_and_the_no_view_answer_keep_to_the_schema() -> None:
    router = {
        "view_age_seconds": 0.4,
        "max_view_age_seconds": 30.0,
        "store_error": None,
        "generation": 12,
        "checker_heartbeat_age_seconds": 1.5,
        "reason": None,
    }
    config, observations, drains = federation()
    view = evaluate(config, observations, drains, None, NOW)
    counts = {("alpha", "balancer"): 3, ("alpha", "cookie"): 1}
    served = status_document(view, router=router, redirects=counts)
    assert served["redirects"] == [
        {"member": "alpha", "reason": "balancer", "count": 3},
        {"member": "alpha", "reason": "cookie", "count": 1},
    ]
    assert errors(served) == []
    assert errors(status_document(view, router=router)) == []  # before any redirect
    assert status_document(view) == view_to_json(view)  # what `fedredirect status` prints
    no_view = {"error": "no snapshot in the store yet (is the checker up?)", "router": router}
    assert errors(no_view) == []
    assert errors({"error": "x"})  # the router's state is part of the answer


def schema_fields(node: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted names of every field the schema allows (NAME for a member's name)."""
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    fields: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        fields.add(path)
        fields |= schema_fields(sub, path + ".")
    if isinstance(node.get("additionalProperties"), dict):
        fields |= schema_fields(node["additionalProperties"], prefix + "NAME.")
    if isinstance(node.get("items"), dict):
        fields |= schema_fields(node["items"], prefix.rstrip(".") + "[].")
    return fields


def test_docs_describe_exactly_the_fields_of_the_schema() -> None:
    text = (DOCS / "status-json.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^- `([^`]+)`: \S", text, re.MULTILINE))
    view_fields = schema_fields(SCHEMA["$defs"]["view"])
    unavailable_fields = schema_fields(SCHEMA["$defs"]["unavailable"])
    assert "members.NAME.state" in view_fields  # the walk reaches the member rows
    assert documented == view_fields | unavailable_fields


def test_ages_are_measured_when_asked_from_the_latest_records() -> None:
    """A router's view lasts until a verdict changes; its pages measure ages at the request
    from the records read since (refreshed with the same content)."""
    members = {n: {"url": url(n), "weight": 10} for n in ("a", "b", "c")}
    config = parse_config({"members": members, "versions": {"reference": "majority"}})
    first = {n: make_obs(n, NOW, record_age=2, versions_age=10) for n in members}
    view = evaluate(config, first, {}, CheckerHeartbeat("c1", NOW), NOW)
    later = {n: make_obs(n, NOW + 100, versions_age=5) for n in members}
    later["b"] = make_obs("b", NOW + 100, versions_age=10)  # the group's oldest versions
    records = Snapshot(config, later, CheckerHeartbeat("c2", NOW + 100))
    doc = status_document(view, {}, {}, now=NOW + 103, records=records)
    ages = {k: v for k, v in doc["members"]["a"].items() if k.endswith("_age_seconds")}
    assert ages == {
        "record_age_seconds": 3.0,
        "health_age_seconds": 3.0,
        "versions_age_seconds": 8.0,
    }
    assert (doc["reference"]["observed_at"], doc["reference"]["age_seconds"]) == (NOW + 90, 13.0)
    assert doc["checker"] == {"checker_id": "c2", "heartbeat_age_seconds": 3.0}
    assert doc["evaluated_at"] == NOW  # what it was judged on: unchanged
    # Without later records, the view's own times, measured now.
    own = status_document(view, now=NOW + 103)
    assert own["members"]["a"]["record_age_seconds"] == 105.0
    assert (own["reference"]["observed_at"], own["reference"]["age_seconds"]) == (NOW - 10, 113.0)
    # A member of the reference's group without versions now: the view's time stands.
    del later["b"]
    gone = status_document(view, now=NOW + 103, records=records)
    assert gone["reference"]["observed_at"] == NOW - 10
    assert gone["members"]["b"]["record_age_seconds"] is None


def test_a_prime_reference_is_as_old_as_the_prime_latest_versions() -> None:
    """A kept view's page measures the reference's age from the prime's latest record (its
    /versions refreshed since), whatever the other members' versions."""
    members = {n: {"url": url(n), "weight": 10, "prime": n == "a"} for n in ("a", "b")}
    config = parse_config({"members": members, "versions": {"reference": "prime"}})
    first = {n: make_obs(n, NOW, versions_age=10) for n in members}
    view = evaluate(config, first, {}, CheckerHeartbeat("c1", NOW), NOW)
    later = {
        "a": make_obs("a", NOW + 100, versions_age=5),
        "b": make_obs("b", NOW + 100, versions_age=50),
    }
    records = Snapshot(config, later, CheckerHeartbeat("c2", NOW + 100))
    doc = status_document(view, now=NOW + 103, records=records)
    assert doc["reference"]["source"] == "prime a"
    assert (doc["reference"]["observed_at"], doc["reference"]["age_seconds"]) == (NOW + 95, 8.0)


# --- launch outcomes ---------------------------------------------------------------------------

EJECTION = "launches failing: 12 of 20 failed in the last 60s (60% > 25%); ejected for 30s"


def outcomes(launches: int = 20, failures: int = 12, **changes: Any) -> LaunchOutcomes:
    return replace(LaunchOutcomes(launches, failures, 60.0, NOW - 1), **changes)


def test_a_failing_member_shows_its_numbers_and_one_without_metrics_is_only_noted() -> None:
    """beta ejected for failing launches; gamma's metrics cannot be read (a note, still
    eligible); alpha's metrics are not read at all."""
    config = parse_config({"members": {n: {"url": url(n), "weight": 10} for n in ("a", "b", "c")}})
    ejected = outcomes(ejected_until=NOW + 20, ejection_reason=EJECTION, ejections=2)
    unread = outcomes(0, 0, window=0.0, error="metrics: connection refused")
    observations = {
        "a": make_obs("a"),
        "b": replace(make_obs("b"), outcomes=ejected),
        "c": replace(make_obs("c"), outcomes=unread),
    }
    doc = view_to_json(evaluate(config, observations, {}, CheckerHeartbeat("c1", NOW), NOW))
    members = doc["members"]
    assert errors(doc) == []
    assert (members["b"]["state"], members["b"]["reasons"]) == ("failing", [EJECTION])
    assert members["b"]["excluded_by"] == ["failing"]
    assert members["b"]["outcomes"] == {
        "launches": 20,
        "failures": 12,
        "failure_ratio": 0.6,
        "window_seconds": 60.0,
        "age_seconds": 1.0,
        "ejected_until": NOW + 20,
        "ejections": 2,
        "error": None,
    }
    assert members["c"]["state"] == "eligible"
    assert members["c"]["outcomes"] == {
        "launches": 0,
        "failures": 0,
        "failure_ratio": None,
        "window_seconds": 0.0,
        "age_seconds": 1.0,
        "ejected_until": None,
        "ejections": 0,
        "error": "metrics: connection refused",
    }
    assert members["a"]["outcomes"] is None
    assert doc["targets"] == ["a", "c"]


def test_an_ejection_over_leaves_its_numbers_and_the_member_eligible() -> None:
    config = parse_config({"members": {"a": {"url": url("a"), "weight": 10}}})
    over = outcomes(3, 0, ejected_until=NOW, ejection_reason=EJECTION, ejections=1)
    doc = view_to_json(
        evaluate(config, {"a": replace(make_obs("a"), outcomes=over)}, {}, None, NOW)
    )
    member = doc["members"]["a"]
    assert (member["state"], member["reasons"]) == ("eligible", [])
    assert (member["outcomes"]["ejected_until"], member["outcomes"]["ejections"]) == (NOW, 1)
    assert errors(doc) == []


def test_launch_counts_are_shown_from_the_latest_records() -> None:
    """Counts move with every read of a busy member's metrics, which changes no verdict, so
    a router keeps its view: its pages take the counts from the records read since."""
    config = parse_config({"members": {"a": {"url": url("a"), "weight": 10}}})
    first = {"a": replace(make_obs("a"), outcomes=outcomes(20, 2))}
    view = evaluate(config, first, {}, CheckerHeartbeat("c1", NOW), NOW)
    later = replace(make_obs("a", NOW + 10), outcomes=outcomes(30, 3, observed_at=NOW + 9))
    records = Snapshot(config, {"a": later}, CheckerHeartbeat("c1", NOW + 10))
    shown = status_document(view, now=NOW + 12, records=records)["members"]["a"]["outcomes"]
    assert (shown["launches"], shown["failures"], shown["age_seconds"]) == (30, 3, 3.0)
    own = status_document(view, now=NOW + 12)["members"]["a"]["outcomes"]
    assert (own["launches"], own["failures"], own["age_seconds"]) == (20, 2, 13.0)
    gone = Snapshot(config, {}, CheckerHeartbeat("c1", NOW + 10))
    assert status_document(view, now=NOW + 12, records=gone)["members"]["a"]["outcomes"] is None


launch_outcomes = st.none() | st.builds(
    lambda launches, share, age, until, ejections, error: LaunchOutcomes(
        launches,
        int(launches * share),
        60.0 - age,
        NOW - age,
        ejected_until=None if until is None else NOW + until,
        ejection_reason=None if until is None else EJECTION,
        ejections=ejections,
        error=error,
    ),
    st.integers(0, 500),
    st.floats(0, 1),
    st.floats(0, 60),
    st.none() | st.sampled_from([-1.0, 0.0, 1.0]) | st.floats(-300, 300),
    st.integers(0, 10),
    st.none() | st.just("metrics: answered HTTP 502"),
)


@settings(max_examples=100, deadline=None)
@given(fed=federations(), data=st.data())
def test_every_view_with_launch_outcomes_matches_the_schema(
    fed: tuple[dict[str, Any], dict[str, MemberObservation], dict[str, Drain]], data: st.DataObject
) -> None:
    raw, observations, drains = fed
    observations = {
        name: replace(obs, outcomes=data.draw(launch_outcomes))
        for name, obs in observations.items()
    }
    view = evaluate(parse_config(raw, "hypothesis"), observations, drains, None, NOW)
    doc = view_to_json(view)
    assert errors(doc) == []
    for name, obs in observations.items():
        shown, record = doc["members"][name]["outcomes"], obs.outcomes
        assert (shown is None) == (record is None)
        until = record.ejected_until if record else None
        ejected = until is not None and until > NOW
        assert ("failing" in doc["members"][name]["excluded_by"]) == ejected


@pytest.mark.parametrize(
    "change",
    [
        {"failure_ratio": 1.5},
        {"launches": -1},
        {"ejections": 0.5},
        {"window_seconds": None},
        {"healthy": True},
    ],
)
def test_the_schema_holds_the_outcomes_to_their_shape(change: dict[str, Any]) -> None:
    doc, shown = known_document(), outcomes_json(outcomes(), NOW)
    assert shown is not None
    doc["members"]["alpha"]["outcomes"] = shown | change
    assert errors(doc)
    doc["members"]["alpha"]["outcomes"] = shown
    assert errors(doc) == []


# --- weights: capacity, slow start, the sets that keep configured weights, launch shares ------


def test_capacity_and_slow_start_are_shown_in_numbers_and_words() -> None:
    """alpha: 10 of its 20 pods free by its report once its headroom (10%: 2) is kept, which
    weighs it, and 8 left once the 2 launches the routers sent since are counted (this
    router's 1, times 2 routers); beta:
    eligible again 130 s ago, at step 4 of its 300 s ramp."""
    config = make_config({"alpha": 50, "beta": 40}, pod_headroom="10%", slow_start=300)
    observations = {
        "alpha": make_obs("alpha", pods=8, quota=20),
        "beta": replace(make_obs("beta"), eligible_since=NOW - 130),
    }
    heartbeat = CheckerHeartbeat("c1", NOW)
    view = evaluate(config, observations, {}, heartbeat, NOW, SentLaunches({"alpha": 1}, 2))
    members = view_to_json(view)["members"]
    alpha, beta = members["alpha"], members["beta"]
    assert (alpha["weight"], alpha["effective_weight"]) == (50, 25.0)
    assert alpha["capacity"] == {"share": 0.5, "free_pods": 8, "pending_launches": 2}
    assert alpha["slow_start"] is None
    assert alpha["weight_reasons"] == [
        "capacity: 10 of 20 pods free at its report, x0.5; 2 launches sent since, 8 left"
    ]
    assert (beta["weight"], beta["effective_weight"]) == (40, 40 * 0.8 * ramp_factor(4))
    assert beta["capacity"] == {"share": 0.8, "free_pods": 80, "pending_launches": 0}
    assert beta["slow_start"] == {
        "factor": ramp_factor(4),
        "step": 4,
        "since": NOW - 130,
        "until": NOW + 170,
    }
    assert beta["weight_reasons"] == [
        "capacity: 80 of 100 pods free, x0.8",
        "slow start: step 4 of 10, x0.16, full weight at 22:16:10 UTC",  # NOW + 170
    ]
    assert errors(view_to_json(view)) == []


def test_the_step_of_a_ramp_is_the_views_as_of_the_checkers_heartbeat() -> None:
    """A router evaluates later than the checker's heartbeat and judges the ramp as of the
    heartbeat: the step shown is the one its factor is from, not the wall clock's."""
    config = make_config({"alpha": 50, "beta": 40}, slow_start=300)
    observations = {
        "alpha": make_obs("alpha", quota=None),
        "beta": replace(make_obs("beta", quota=None), eligible_since=NOW - 130),
    }
    view = evaluate(config, observations, {}, CheckerHeartbeat("c1", NOW), NOW + 20)
    assert not view.outage_active
    beta = view_to_json(view)["members"]["beta"]
    assert beta["slow_start"]["step"] == 4  # 130 s of 300 at the heartbeat, not 150
    assert beta["slow_start"]["factor"] == ramp_factor(4) == beta["effective_weight"] / 40


def test_a_member_without_a_quota_or_an_ok_health_has_no_capacity() -> None:
    config = make_config({"alpha": 50, "beta": 40, "gamma": 30}, pod_headroom=0)
    observations = {
        "alpha": make_obs("alpha", quota=None),
        "beta": make_obs("beta", status="unhealthy"),
        "gamma": make_obs("gamma", pods=0, quota=100),
    }
    members = view_to_json(evaluate(config, observations, {}, None, NOW))["members"]
    assert (members["alpha"]["capacity"], members["alpha"]["weight_reasons"]) == (None, [])
    assert members["alpha"]["effective_weight"] == 50  # its configured weight, no reason
    assert members["beta"]["capacity"] is None
    assert members["beta"]["weight_reasons"] == ["excluded: unhealthy"]
    # all of its quota free: a factor of 1, said all the same
    assert members["gamma"]["weight_reasons"] == ["capacity: 100 of 100 pods free, x1"]


@pytest.mark.parametrize(
    ("settings", "heartbeat_age", "pods", "expected"),
    [
        (  # nobody eligible: the fallback set balances by the configured weights
            {"fallback": "all"},
            0,
            FULL_PODS,
            {
                "alpha": ["excluded: full", "fallback 'all': balanced by weight 50"],
                "beta": ["excluded: full", "fallback 'all': balanced by weight 40"],
            },
        ),
        (  # the prime alone, by weight 1
            {"fallback": "prime"},
            0,
            FULL_PODS,
            {
                "alpha": ["excluded: full", "fallback 'prime': balanced by weight 1"],
                "beta": ["excluded: full"],
            },
        ),
        (  # the checker is gone: nothing to judge capacity by, so the configured weights
            {"outage": {"policy": "all", "max_staleness": 60}},
            3600,
            60,
            {
                "alpha": [
                    "capacity: 30 of 100 pods free, x0.3",
                    "outage 'all': balanced by weight 50",
                ],
                "beta": [
                    "capacity: 30 of 100 pods free, x0.3",
                    "outage 'all': balanced by weight 40",
                ],
            },
        ),
    ],
)
def test_the_fallback_and_outage_sets_say_they_keep_configured_weights(
    settings: dict[str, Any], heartbeat_age: float, pods: int, expected: dict[str, list[str]]
) -> None:
    config = make_config({"alpha": 50, "beta": 40}, **settings)
    observations = {n: make_obs(n, pods=pods) for n in ("alpha", "beta")}
    heartbeat = CheckerHeartbeat("c1", NOW - heartbeat_age)
    doc = view_to_json(evaluate(config, observations, {}, heartbeat, NOW))
    assert {n: m["weight_reasons"] for n, m in doc["members"].items()} == expected
    assert errors(doc) == []


def test_launch_shares_add_up_every_routers_counts_of_the_window() -> None:
    """What the share chart of /status draws per router, added up: each member's part."""
    config, observations, drains = federation()
    view = evaluate(config, observations, drains, None, NOW)
    pictures = {
        "start": NOW - 3600,
        "end": NOW,
        "error": None,
        "launches": {"r1:1": {"alpha": 30, "beta": 5}, "r2:7": {"alpha": 25, "gamma": 20}},
    }
    launches = launch_counts(pictures)
    assert launches == LaunchCounts(3600.0, {"alpha": 55, "beta": 5, "gamma": 20})
    doc = status_document(view, launches=launches)
    shares = {n: m["launch_share"] for n, m in doc["members"].items()}
    assert shares == {
        "alpha": {"launches": 55, "share": 55 / 80, "window_seconds": 3600.0},
        "beta": {"launches": 5, "share": 5 / 80, "window_seconds": 3600.0},
        "gamma": {"launches": 20, "share": 20 / 80, "window_seconds": 3600.0},
        "delta": {"launches": 0, "share": 0.0, "window_seconds": 3600.0},
    }
    assert errors(doc) == []
    quiet = status_document(view, launches=LaunchCounts(3600.0, {}))
    assert quiet["members"]["alpha"]["launch_share"] == {
        "launches": 0,
        "share": None,
        "window_seconds": 3600.0,
    }
    assert launch_counts(None) is None
    assert launch_counts({"window": "1h", "error": "cannot read history"}) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capacity", {"share": 1.5, "free_pods": 1, "pending_launches": 0}),
        ("capacity", {"share": 0.5, "free_pods": -1, "pending_launches": 0}),
        ("capacity", {"share": 0.5, "free_pods": 1}),
        ("slow_start", {"factor": 0.5, "step": 10, "since": NOW, "until": NOW + 300}),
        ("slow_start", {"factor": 1.0, "step": 9, "since": NOW, "until": NOW + 300}),
        ("weight_reasons", [""]),
        ("weight_reasons", None),
        ("launch_share", {"launches": 3, "share": 0.5}),
        ("launch_share", {"launches": 3, "share": 0.5, "window_seconds": 0}),
    ],
)
def test_the_schema_holds_the_weights_to_their_shape(field: str, value: Any) -> None:
    doc = known_document()
    doc["members"]["alpha"][field] = value
    assert errors(doc)


@settings(max_examples=100, deadline=None)
@given(drawn=views_with_weights())
def test_every_view_with_capacity_and_slow_start_matches_the_schema(
    drawn: tuple[View, SentLaunches],
) -> None:
    view, sent = drawn
    doc = view_to_json(view)
    assert errors(doc) == []
    assert json.loads(json.dumps(doc)) == doc
    for m in view.members:
        row = doc["members"][m.name]
        assert (row["capacity"] is None) == (m.capacity_share is None)
        assert (row["slow_start"] is None) == (m.ramp is None)
        if row["capacity"] is not None:
            assert row["capacity"]["pending_launches"] == sent.pending(m.name)
