"""What a member's unusable answer shows on the status page, word for word, and the counts
an unhealthy answer still carries (the status row shows pods and the answer's age)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.payloads import PayloadError, parse_health, parse_versions
from shared.records import HealthObservation

NOW = 1_700_000_000.0
QUOTA = {"service": "Pod quota", "ok": True, "_ignore_failure": True, "total_pods": 7, "quota": 50}


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def message(parse: Any, *args: Any) -> str:
    with pytest.raises(PayloadError) as info:
        parse(*args)
    return str(info.value)


@pytest.mark.parametrize(
    ("status", "doc", "reason"),
    [
        (200, {"ok": False, "checks": [QUOTA]}, "health reports ok=false"),
        (503, {"ok": True, "checks": [QUOTA]}, "health answered HTTP 503 with ok=true"),
        (
            503,
            {"ok": False, "checks": [QUOTA, {"service": "Docker registry", "ok": False}]},
            "check failed: Docker registry",
        ),
    ],
)
def test_an_unhealthy_answer_keeps_its_pod_counts_and_time(
    status: int, doc: dict[str, Any], reason: str
) -> None:
    assert parse_health(status, body(doc), NOW) == HealthObservation(
        "unhealthy", (reason,), 7, 50, NOW
    )


def test_a_failed_check_without_a_name_is_an_unnamed_check() -> None:
    obs = parse_health(200, body({"ok": False, "checks": [{"ok": False}]}), NOW)
    assert obs.reasons == ("check failed: unnamed check",)


def test_a_body_that_is_not_json_is_quoted_on_one_line_up_to_60_bytes() -> None:
    text = b"<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + b"x" * 80
    quoted = repr(text[:60].decode().replace("\n", " "))
    assert message(parse_health, 200, text, NOW) == f"health body is not JSON: {quoted}"
    assert message(parse_versions, 200, text) == f"versions body is not JSON: {quoted}"


@pytest.mark.parametrize(
    ("doc", "shown"),
    [
        ([1, 2], "health body has no 'ok'"),
        ({"ok": True, "checks": {"a": 1}}, "health 'checks' is not a list"),
    ],
)
def test_malformed_health_messages(doc: Any, shown: str) -> None:
    assert message(parse_health, 200, body(doc), NOW) == shown


@pytest.mark.parametrize(
    ("doc", "shown"),
    [
        ([], "versions body is not a non-empty JSON object"),
        ({"builder_info": {}}, "versions body carries no version values"),
    ],
)
def test_malformed_versions_messages(doc: Any, shown: str) -> None:
    assert message(parse_versions, 200, body(doc)) == shown
