"""Observation records: what the checker saw of each member, as published to the store.

Health and versions are observed independently: a member that is full, unhealthy or even
unreachable for /health still has its last observed versions, with their own timestamp.
All times are UNIX seconds (wall clock), since checker and routers run on different hosts.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, asdict, dataclass
from typing import Any, Literal

HealthStatus = Literal["ok", "unhealthy", "unreachable"]


@dataclass(frozen=True, slots=True)
class HealthObservation:
    """One answer (or failure to answer) of a member's /health endpoint."""

    status: HealthStatus
    reasons: tuple[str, ...] = ()
    total_pods: int | None = None
    quota: int | None = None
    observed_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HealthObservation:
        return cls(
            status=data["status"],
            reasons=tuple(data.get("reasons", ())),
            total_pods=data.get("total_pods"),
            quota=data.get("quota"),
            observed_at=float(data["observed_at"]),
        )


@dataclass(frozen=True, slots=True)
class LaunchOutcomes:
    """A member's launches as its own /metrics count them over the checker's window, and
    whether it is ejected for failing them (shared.outcomes decides; the checker writes)."""

    launches: int  # launches that ended in the window, quota refusals not counted
    failures: int
    window: float  # seconds the counts span (less than outcomes.window after a start)
    observed_at: float  # the latest /metrics sample read
    _: KW_ONLY
    ejected_until: float | None = None  # excluded as "failing" until then
    ejection_reason: str | None = None  # the numbers that ejected it, for /status and /why
    ejections: int = 0  # ejections in a row: the next one lasts longer
    error: str | None = None  # why the latest /metrics read failed: judged as before

    @property
    def failure_ratio(self) -> float | None:
        return self.failures / self.launches if self.launches else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LaunchOutcomes:
        until = data.get("ejected_until")
        return cls(
            launches=int(data["launches"]),
            failures=int(data["failures"]),
            window=float(data["window"]),
            observed_at=float(data["observed_at"]),
            ejected_until=None if until is None else float(until),
            ejection_reason=data.get("ejection_reason"),
            ejections=int(data.get("ejections", 0)),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True)
class MemberObservation:
    """What the checker saw of one member, as its readers use it (the rules, pages,
    metrics, history and replay); published whole, never in parts."""

    member: str
    checked_at: float  # last time the checker finished any check of this member
    health: HealthObservation | None = None  # the /health verdict, flap-damped (observe.py)
    _: KW_ONLY  # the rest by name, so a field that goes cannot shift another's value
    versions: dict[str, str] | None = None  # last successfully observed /versions
    versions_at: float | None = None
    versions_error: str | None = None  # why the latest /versions fetch failed, if it did
    last_error: str | None = None  # the latest error of either endpoint
    # Reference dwell: when ``versions`` last changed, and what was settled before then.
    versions_changed_at: float | None = None
    settled_versions: dict[str, str] | None = None
    # The URLs that last answered /health and /versions, after redirects (None: no answer yet).
    health_url: str | None = None
    versions_url: str | None = None
    outcomes: LaunchOutcomes | None = None  # None: its metrics are not read
    # When the checker's view last found it eligible after an exclusion, or new (the start
    # of its slow start, shared.slowstart); None while it is excluded. The checker stamps
    # every record it publishes; until then, and without the key, 0.0: eligible long ago.
    eligible_since: float | None = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "checked_at": self.checked_at,
            "health": self.health.to_json() if self.health else None,
            "versions": self.versions,
            "versions_at": self.versions_at,
            "versions_error": self.versions_error,
            "last_error": self.last_error,
            "versions_changed_at": self.versions_changed_at,
            "settled_versions": self.settled_versions,
            "health_url": self.health_url,
            "versions_url": self.versions_url,
            "outcomes": self.outcomes.to_json() if self.outcomes else None,
            "eligible_since": self.eligible_since,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemberObservation:
        """Keys it does not know are left out, so a record written by an earlier checker
        (during a rolling update, say) reads as it did then."""
        health = data.get("health")
        outcomes = data.get("outcomes")
        return cls(
            member=data["member"],
            checked_at=float(data["checked_at"]),
            health=HealthObservation.from_json(health) if health else None,
            versions=data.get("versions"),
            versions_at=data.get("versions_at"),
            versions_error=data.get("versions_error"),
            last_error=data.get("last_error"),
            versions_changed_at=data.get("versions_changed_at"),
            settled_versions=data.get("settled_versions"),
            health_url=data.get("health_url"),
            versions_url=data.get("versions_url"),
            outcomes=LaunchOutcomes.from_json(outcomes) if outcomes else None,
            # Absent: written by a checker without slow start, to whom it was eligible long ago.
            eligible_since=data.get("eligible_since", 0.0),
        )


@dataclass(frozen=True, slots=True)
class Drain:
    """An operator's decision to take a member out of rotation."""

    member: str
    reason: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Drain:
        return cls(member=data["member"], reason=str(data.get("reason", "")), at=float(data["at"]))


@dataclass(frozen=True, slots=True)
class CheckerHeartbeat:
    """Who published the snapshot, and when: readers can tell that the checker died."""

    checker_id: str
    at: float
    _: KW_ONLY
    fence: int = 0  # the writer lease's fencing token under which this was published

    def to_json(self) -> dict[str, Any]:
        # Readers of the previous version require "started_at" (none reads its value): it
        # goes once no such reader can be left, i.e. in the version after this one.
        return asdict(self) | {"started_at": self.at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckerHeartbeat:
        """Keys it does not know (``started_at``, say) are left out."""
        return cls(
            checker_id=str(data["checker_id"]),
            at=float(data["at"]),
            fence=int(data.get("fence", 0)),
        )
