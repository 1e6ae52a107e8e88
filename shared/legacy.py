"""The replaced redirector's config file, read as it meant it: its defaults, its meanings of
``retries`` and ``jitter``, and what it ignored (the chart's deployment keys, nulls, weight-0
members), turned into the native shape that :mod:`shared.config` validates strictly."""

from __future__ import annotations

from typing import Any

#: What mybinder.org-deploy's chart reads from its ``federationRedirect`` block for the
#: deployment itself (``templates/federation-redirect/``: the Deployment's ``image``,
#: ``resources`` and ``nodeSelector``, the Ingress's ``host``, every template's
#: ``enabled``). It renders the whole block into ``config.json``, so these ride along.
DEPLOYMENT_KEYS = frozenset({"enabled", "host", "image", "resources", "nodeSelector"})


def _is_zero(value: object) -> bool:
    """Weight 0 exactly (``false`` is not a weight: validation rejects it as a wrong type)."""
    return type(value) in (int, float) and value == 0


def drop_unused_members(raw: dict[str, Any], section: str, source: str) -> list[str]:
    """Drop members set to null or with weight 0 (the replaced redirector did the same)."""
    warnings: list[str] = []
    members = raw.get(section)
    if not isinstance(members, dict):
        return warnings
    for name in list(members):
        entry = members[name]
        if entry is None:
            warnings.append(f"{source}: {section}.{name} is null; dropped")
            del members[name]
        elif isinstance(entry, dict) and _is_zero(entry.get("weight")):
            warnings.append(f"{source}: {section}.{name} has weight 0; dropped")
            del members[name]
    return warnings


#: The replaced redirector's defaults for ``check`` keys a legacy file leaves out.
LEGACY_CHECK_DEFAULTS: dict[str, Any] = {
    "period": 10,
    "jitter": 0.1,
    "retries": 5,
    "timeout": 2,
    "failed_period": 300,
}


def _without_nulls(
    entry: dict[str, Any], where: str, source: str
) -> tuple[dict[str, Any], list[str]]:
    nulls = [key for key, value in entry.items() if value is None]
    warnings = [f"{source}: {where}: ignored keys set to null: {', '.join(nulls)}"] if nulls else []
    return {k: v for k, v in entry.items() if v is not None}, warnings


def legacy_to_native(doc: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """The replaced redirector's config, as it meant it, in the native shape.

    - The chart's :data:`DEPLOYMENT_KEYS` at the top level are ignored, as the replaced
      redirector ignored them, with one warning naming them. Any other key is left for
      validation, which refuses a key it does not know (a typo is not a deployment key).
    - Keys set to null (Helm's only way to remove one) are ignored, with a warning.
    - ``check.retries`` counted every attempt there; here it counts attempts after the
      first, so it becomes ``retries - 1`` (at least 0).
    - ``check.jitter`` spread checks by ±jitter/2 there; here by ±jitter, so it is halved.
    - ``check`` keys left out take the replaced redirector's defaults, mapped the same way.
    """
    warnings: list[str] = []
    ignored = sorted(key for key in doc if key in DEPLOYMENT_KEYS)
    if ignored:
        warnings.append(f"{source}: ignored keys the redirector does not use: {', '.join(ignored)}")
    kept = {k: v for k, v in doc.items() if k not in DEPLOYMENT_KEYS}
    doc, nulls = _without_nulls(kept, "top level", source)
    warnings += nulls
    hosts = doc.get("hosts")
    if isinstance(hosts, dict):
        cleaned: dict[str, Any] = {}
        for name, entry in hosts.items():
            if isinstance(entry, dict):
                entry, nulls = _without_nulls(entry, f"hosts.{name}", source)
                warnings += nulls
            cleaned[name] = entry
        doc["hosts"] = cleaned
    check = doc.get("check", {})
    if isinstance(check, dict):
        check, nulls = _without_nulls(check, "check", source)
        warnings += nulls
        check = {**LEGACY_CHECK_DEFAULTS, **check}
        retries, jitter = check["retries"], check["jitter"]
        if type(retries) is int:
            check["retries"] = max(retries - 1, 0)
        if type(jitter) in (int, float):
            check["jitter"] = jitter / 2
        doc["check"] = check
    return doc, warnings
