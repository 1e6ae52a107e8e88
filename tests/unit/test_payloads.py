"""Parsing BinderHub /health and /versions answers: real samples, malformed bodies, fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.payloads import PayloadError, parse_health, parse_versions

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "binderhub"
NOW = 1_700_000_000.0


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def health_doc(*checks: dict[str, Any], ok: bool = True) -> bytes:
    return json.dumps({"ok": ok, "checks": list(checks)}).encode()


def quota_check(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"service": "Pod quota", "ok": True, "_ignore_failure": True}
    entry.update(fields)
    return entry


# --- /health: the samples -------------------------------------------------------------------


def test_health_ok_sample() -> None:
    obs = parse_health(200, sample("health-ok.json"), NOW)
    assert obs.status == "ok"
    assert obs.reasons == ()
    assert (obs.total_pods, obs.quota) == (42, 100)
    assert obs.observed_at == NOW


def test_health_full_sample_is_ok_here_fullness_is_decided_by_evaluate() -> None:
    obs = parse_health(200, sample("health-full.json"), NOW)
    assert obs.status == "ok"
    assert obs.reasons == ()
    assert (obs.total_pods, obs.quota) == (101, 100)


def test_health_down_sample_with_503_is_unhealthy_naming_the_check() -> None:
    obs = parse_health(503, sample("health-down.json"), NOW)
    assert obs.status == "unhealthy"
    assert len(obs.reasons) == 1
    assert "JupyterHub API" in obs.reasons[0]
    assert "Pod quota" not in " ".join(obs.reasons)  # _ignore_failure is never a verdict
    assert (obs.total_pods, obs.quota) == (12, 100)


def test_health_down_sample_with_200_is_still_unhealthy() -> None:
    obs = parse_health(200, sample("health-down.json"), NOW)
    assert obs.status == "unhealthy"
    assert "JupyterHub API" in obs.reasons[0]


def test_every_failed_hard_check_is_a_reason() -> None:
    body = health_doc(
        {"service": "Docker registry", "ok": False},
        {"service": "JupyterHub API", "ok": False},
        ok=False,
    )
    obs = parse_health(503, body, NOW)
    assert obs.status == "unhealthy"
    assert obs.reasons == ("check failed: Docker registry", "check failed: JupyterHub API")


def test_ok_false_without_a_failed_check_is_unhealthy() -> None:
    obs = parse_health(200, health_doc({"service": "x", "ok": True}, ok=False), NOW)
    assert obs.status == "unhealthy"
    assert obs.reasons == ("health reports ok=false",)


def test_503_with_ok_true_is_unhealthy() -> None:
    obs = parse_health(503, sample("health-ok.json"), NOW)
    assert obs.status == "unhealthy"
    assert "503" in obs.reasons[0]


def test_quota_null_means_no_quota() -> None:
    obs = parse_health(200, health_doc(quota_check(total_pods=7, quota=None)), NOW)
    assert obs.status == "ok"
    assert (obs.total_pods, obs.quota) == (7, None)


def test_missing_pod_quota_entry_means_no_counts() -> None:
    body = health_doc({"service": "Docker registry", "ok": True})
    obs = parse_health(200, body, NOW)
    assert obs.status == "ok"
    assert (obs.total_pods, obs.quota) == (None, None)


def test_missing_checks_list_is_ok() -> None:
    obs = parse_health(200, b'{"ok": true}', NOW)
    assert obs.status == "ok"
    assert obs.total_pods is None


# --- /health: malformed -----------------------------------------------------------------------


MALFORMED_HEALTH: list[tuple[str, bytes, str]] = [
    ("not-json", b"<html>Bad Gateway</html>", "not JSON"),
    ("not-utf8", b"\xff\xfe\xfa", "not JSON"),
    ("empty", b"", "not JSON"),
    ("list", b"[1, 2]", "no 'ok'"),
    ("string", b'"ok"', "no 'ok'"),
    ("missing-ok", b'{"checks": []}', "no 'ok'"),
    ("checks-not-list", b'{"ok": true, "checks": {"a": 1}}', "'checks' is not a list"),
    ("entry-without-ok", health_doc({"service": "Docker registry"}), "without 'ok'"),
    ("entry-not-object", b'{"ok": true, "checks": ["fine"]}', "not an object"),
    ("negative-pods", health_doc(quota_check(total_pods=-1, quota=10)), "negative"),
    ("negative-quota", health_doc(quota_check(total_pods=1, quota=-10)), "negative"),
    ("string-pods", health_doc(quota_check(total_pods="12", quota=10)), "not an integer"),
    ("bool-pods", health_doc(quota_check(total_pods=True, quota=10)), "not an integer"),
    ("float-pods", health_doc(quota_check(total_pods=1.5, quota=10)), "not an integer"),
    ("null-pods", health_doc(quota_check(total_pods=None, quota=10)), "not an integer"),
    ("missing-pods", health_doc(quota_check(quota=10)), "not an integer"),
    ("string-quota", health_doc(quota_check(total_pods=1, quota="10")), "not an integer"),
]


@pytest.mark.parametrize(
    ("body", "message"),
    [pytest.param(body, message, id=case) for case, body, message in MALFORMED_HEALTH],
)
def test_malformed_health_raises_a_clear_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_health(200, body, NOW)
    assert message in str(info.value)


@pytest.mark.parametrize("status", [500, 302, 404, 204, 429])
def test_health_http_status_other_than_200_or_503_is_a_payload_error(status: int) -> None:
    with pytest.raises(PayloadError, match=f"HTTP {status}"):
        parse_health(status, sample("health-ok.json"), NOW)


def test_not_json_message_quotes_the_start_of_the_body() -> None:
    with pytest.raises(PayloadError, match="Bad Gateway"):
        parse_health(200, b"<html>Bad Gateway</html>", NOW)


# --- /versions --------------------------------------------------------------------------------


def test_versions_sample_is_flattened_to_dotted_keys() -> None:
    assert parse_versions(200, sample("versions.json")) == {
        "builder_info.build_image": "quay.io/jupyterhub/repo2docker:2024.07.0",
        "binderhub": "1.0.0-0.dev.git.3520.h1234abcd",
        "builder": "quay.io/jupyterhub/repo2docker:2024.07.0",
    }


def test_versions_local_sample_is_flattened_to_dotted_keys() -> None:
    assert parse_versions(200, sample("versions-local.json")) == {
        "builder_info.repo2docker-version": "2024.07.0",
        "binderhub": "1.0.0-0.dev.git.3520.h1234abcd",
    }


def test_versions_non_string_values_become_json_text() -> None:
    body = b'{"a": {"b": {"c": 3}}, "n": null, "t": true, "l": [1, "x"]}'
    assert parse_versions(200, body) == {"a.b.c": "3", "n": "null", "t": "true", "l": '[1, "x"]'}


@pytest.mark.parametrize("status", [500, 503, 404, 302])
def test_versions_non_200_is_a_payload_error(status: int) -> None:
    with pytest.raises(PayloadError, match=f"HTTP {status}"):
        parse_versions(status, sample("versions.json"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b"{}", "non-empty JSON object"),
        (b"[]", "non-empty JSON object"),
        (b'["binderhub"]', "non-empty JSON object"),
        (b'"1.0"', "non-empty JSON object"),
        (b'{"builder_info": {}}', "no version values"),
    ],
)
def test_malformed_versions_raise_a_clear_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_versions(200, body)
    assert message in str(info.value)


# --- fuzzing: nothing but PayloadError ever escapes --------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
check_entries = st.fixed_dictionaries(
    {},
    optional={
        "service": st.sampled_from(["Pod quota", "JupyterHub API"]) | json_values,
        "ok": st.booleans() | json_values,
        "total_pods": st.integers(-5, 500) | json_values,
        "quota": st.none() | st.integers(-5, 500) | json_values,
        "_ignore_failure": st.booleans() | json_values,
    },
)
health_like = st.fixed_dictionaries(
    {},
    optional={"ok": st.booleans() | json_values, "checks": st.lists(check_entries) | json_values},
)
statuses = st.sampled_from([200, 503, 500, 302]) | st.integers(100, 599)


@settings(max_examples=200, deadline=None)
@given(status=statuses, body=st.binary(max_size=200))
def test_parse_health_on_arbitrary_bytes_raises_only_payload_error(
    status: int, body: bytes
) -> None:
    try:
        obs = parse_health(status, body, NOW)
    except PayloadError as exc:
        assert str(exc)
    else:
        assert obs.status in ("ok", "unhealthy")


@settings(max_examples=200, deadline=None)
@given(status=statuses, doc=json_values | health_like)
def test_parse_health_on_arbitrary_json_raises_only_payload_error(status: int, doc: Any) -> None:
    try:
        obs = parse_health(status, json.dumps(doc).encode(), NOW)
    except PayloadError as exc:
        assert str(exc)
    else:
        assert status in (200, 503)
        assert obs.status in ("ok", "unhealthy")
        assert obs.status == "unhealthy" or (status == 200 and bool(doc["ok"]))
        for count in (obs.total_pods, obs.quota):
            assert count is None or (type(count) is int and count >= 0)


@settings(max_examples=200, deadline=None)
@given(status=statuses, body=st.binary(max_size=200))
def test_parse_versions_on_arbitrary_bytes_raises_only_payload_error(
    status: int, body: bytes
) -> None:
    try:
        parse_versions(status, body)
    except PayloadError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(doc=json_values)
def test_parse_versions_on_arbitrary_json_raises_only_payload_error(doc: Any) -> None:
    try:
        versions = parse_versions(200, json.dumps(doc).encode())
    except PayloadError as exc:
        assert str(exc)
    else:
        assert isinstance(doc, dict)
        assert versions
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items())


@pytest.mark.parametrize("parse", ["health", "versions"])
def test_deeply_nested_json_is_a_payload_error(parse: str) -> None:
    # Regression: json.loads raised RecursionError, which escaped the parser.
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PayloadError, match="not JSON"):
        if parse == "health":
            parse_health(200, body, NOW)
        else:
            parse_versions(200, body)


@pytest.mark.parametrize(
    ("flag", "status"),
    [
        (True, "ok"),
        (1, "ok"),
        ("yes", "ok"),
        (False, "unhealthy"),
        (0, "unhealthy"),
        ("", "unhealthy"),
    ],
)
def test_ignore_failure_is_read_by_truthiness_as_binderhub_does(flag: object, status: str) -> None:
    body = health_doc({"service": "JupyterHub API", "ok": False, "_ignore_failure": flag})
    health = parse_health(200, body, 0.0)
    assert health.status == status
    assert health.reasons == (() if status == "ok" else ("check failed: JupyterHub API",))


@pytest.mark.parametrize(
    ("ok", "status"),
    [
        (1, "ok"),
        ("yes", "ok"),
        (0, "unhealthy"),
        (None, "unhealthy"),
        ("", "unhealthy"),
        ([], "unhealthy"),
    ],
)
def test_ok_is_read_by_truthiness(ok: object, status: str) -> None:
    top = parse_health(200, json.dumps({"ok": ok, "checks": []}).encode(), 0.0)
    assert top.status == status
    check = parse_health(200, health_doc({"service": "JupyterHub API", "ok": ok}), 0.0)
    assert check.status == status


def test_a_soft_check_lacking_ok_is_skipped_but_a_hard_one_invalidates_the_answer() -> None:
    soft = health_doc(
        {"service": "Image cleaner", "_ignore_failure": True}, quota_check(total_pods=3, quota=9)
    )
    assert parse_health(200, soft, 0.0).status == "ok"
    with pytest.raises(PayloadError, match="without 'ok'"):
        parse_health(200, health_doc({"service": "Image cleaner"}), 0.0)


def test_pod_quota_without_ignore_failure_is_still_soft() -> None:
    # BinderHub before 2023 left the flag out and excluded the quota check by name.
    body = health_doc({"service": "Pod quota", "ok": False, "total_pods": 0, "quota": 0})
    obs = parse_health(200, body, 0.0)
    assert (obs.status, obs.total_pods, obs.quota) == ("ok", 0, 0)


def test_a_503_without_a_json_body_is_http_503() -> None:
    with pytest.raises(PayloadError) as info:
        parse_health(503, b"<html>Service Unavailable</html>", 0.0)
    assert str(info.value) == "HTTP 503"


def test_a_versions_key_given_dotted_and_nested_is_an_error() -> None:
    with pytest.raises(PayloadError, match="appears twice"):
        parse_versions(200, b'{"a.b": "1", "a": {"b": "2"}}')
