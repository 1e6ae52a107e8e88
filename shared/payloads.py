"""Parsing BinderHub /health and /versions answers into observations.

Pure functions of (status code, body, time). Anything malformed becomes a clear reason,
never an exception that could stop the checker.
"""

from __future__ import annotations

import json
from typing import Any

from shared.records import HealthObservation

POD_QUOTA = "Pod quota"


class PayloadError(ValueError):
    """A member's answer that cannot be understood; the message is the reason shown."""


def _decode_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        snippet = body[:60].decode("utf-8", "replace").replace("\n", " ")
        raise PayloadError(f"{what} body is not JSON: {snippet!r}") from None


def _count(entry: dict[str, Any], key: str, nullable: bool) -> int | None:
    value = entry.get(key)
    if value is None and nullable and key in entry:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"Pod quota '{key}' is not an integer: {value!r}")
    if value < 0:
        raise PayloadError(f"Pod quota '{key}' is negative: {value}")
    return value


def _is_soft(entry: dict[str, Any], service: str) -> bool:
    """A check that never makes a member unhealthy on its own: marked ``_ignore_failure``
    (BinderHub since 2023), or the pod quota, which BinderHub excluded by name before that."""
    return bool(entry.get("_ignore_failure")) or service == POD_QUOTA


def parse_health(status_code: int, body: bytes, now: float) -> HealthObservation:
    """Turn a /health answer into an observation, reading it as BinderHub writes it.

    200 and 503 with a JSON body are real answers; any other status (an HTML error page,
    a proxy's 502) is "HTTP <status>". ``ok`` is read by truthiness, as BinderHub computes
    it. Every failed hard check is a reason, named by its service, known to us or not; a
    soft check (see :func:`_is_soft`) never is, and may even lack ``ok``. The pod quota
    entry supplies the counts for the fullness rule; ``quota: null`` means no limit.
    """
    if status_code not in (200, 503):
        raise PayloadError(f"HTTP {status_code}")
    try:
        doc = _decode_json(body, "health")
    except PayloadError:
        if status_code == 503:
            raise PayloadError("HTTP 503") from None
        raise
    if not isinstance(doc, dict) or "ok" not in doc:
        raise PayloadError("health body has no 'ok'")
    checks = doc.get("checks", [])
    if not isinstance(checks, list):
        raise PayloadError("health 'checks' is not a list")
    failed: list[str] = []
    total_pods: int | None = None
    quota: int | None = None
    for entry in checks:
        if not isinstance(entry, dict):
            raise PayloadError(f"health check entry is not an object: {entry!r:.80}")
        service = str(entry.get("service", "unnamed check"))
        soft = _is_soft(entry, service)
        if "ok" not in entry and not soft:
            raise PayloadError(f"health check entry without 'ok': {entry!r:.80}")
        if service == POD_QUOTA:
            total_pods = _count(entry, "total_pods", nullable=False)
            quota = _count(entry, "quota", nullable=True)
        if not soft and not entry["ok"]:
            failed.append(service)
    if failed:
        reasons = tuple(f"check failed: {service}" for service in failed)
        return HealthObservation("unhealthy", reasons, total_pods, quota, now)
    if not doc["ok"]:
        return HealthObservation("unhealthy", ("health reports ok=false",), total_pods, quota, now)
    if status_code != 200:
        reason = f"health answered HTTP {status_code} with ok=true"
        return HealthObservation("unhealthy", (reason,), total_pods, quota, now)
    return HealthObservation("ok", (), total_pods, quota, now)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    elif prefix in out:
        raise PayloadError(f"versions key {prefix!r} appears twice (dotted and nested)")
    elif isinstance(value, str):
        out[prefix] = value
    elif value is None or isinstance(value, (bool, int, float, list)):
        out[prefix] = json.dumps(value)
    else:  # pragma: no cover - json.loads yields nothing else
        raise PayloadError(f"versions value of unexpected type at {prefix!r}")


def parse_versions(status_code: int, body: bytes) -> dict[str, str]:
    """Turn a /versions answer into a flat ``{dotted.key: value}`` mapping.

    ``{"builder_info": {"build_image": X}, "binderhub": Y}`` becomes
    ``{"builder_info.build_image": X, "binderhub": Y}``, so config can compare a subset
    of keys by name.
    """
    if status_code != 200:
        raise PayloadError(f"versions answered HTTP {status_code}")
    doc = _decode_json(body, "versions")
    if not isinstance(doc, dict) or not doc:
        raise PayloadError("versions body is not a non-empty JSON object")
    out: dict[str, str] = {}
    _flatten("", doc, out)
    if not out:
        raise PayloadError("versions body carries no version values")
    return out
