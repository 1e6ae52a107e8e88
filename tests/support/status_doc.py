"""A hand-built /status.json document (``BASE``) and its members, for tests of what renders one."""

from __future__ import annotations

from typing import Any

REF = {"binderhub": "1.0.0", "builder": "r2d:2024.07.0"}


def member(state: str = "eligible", **changes: Any) -> dict[str, Any]:
    member: dict[str, Any] = {
        "url": "https://example.org",
        "weight": 50.0,
        "effective_weight": 40.0 if state == "eligible" else 0.0,  # x its capacity share
        "prime": False,
        "state": state,
        "eligible": state == "eligible",
        "reasons": [],
        "excluded_by": [],
        "versions": dict(REF),
        "version_differences": [],
        "total_pods": 10,
        "quota": 100,
        "record_age_seconds": 0.4,
        "health_age_seconds": 0.4,
        "versions_age_seconds": 12.0,
        "last_error": None,
        "outcomes": None,
        "capacity": {"share": 0.8, "free_pods": 80, "pending_launches": 0},  # headroom 10
        "slow_start": None,
        "weight_reasons": [
            "capacity: 80 of 100 pods free, x0.8" if state == "eligible" else f"excluded: {state}"
        ],
        "recent_launches": None,
        "launch_share": None,
    }
    member.update(changes)
    return member


BASE: dict[str, Any] = {
    "evaluated_at": 1_700_000_000.0,
    "reference": {
        "policy": "prime",
        "versions": REF,
        "compared_keys": ["binderhub", "builder"],
        "source": "prime alpha",
        "observed_at": 1_699_999_990.0,
        "age_seconds": 10.0,
        "max_age_seconds": 3600.0,
        "stale": False,
        "stale_reason": None,
    },
    "version_gate": {"suspended": False, "reason": None},
    "fallback": {"policy": "prime", "active": False, "reason": None},
    "targets": ["alpha"],
    "checker": {"checker_id": "checker-1", "heartbeat_age_seconds": 0.5},
    "members": {"alpha": member(prime=True)},
    "router": {
        "view_age_seconds": 0.2,
        "max_view_age_seconds": 5.0,
        "store_error": None,
        "generation": 7,
        "checker_heartbeat_age_seconds": 0.5,
        "reason": None,
    },
    "redirects": [
        {"member": "alpha", "reason": "balancer", "count": 3},
        {"member": "alpha", "reason": "cookie", "count": 1},
    ],
}
