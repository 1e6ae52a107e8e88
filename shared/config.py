"""Federation configuration: one validated model, loaded from the legacy JSON or native YAML.

The replaced redirector's JSON file (top-level ``hosts``) is accepted exactly as
deployments render it: the Helm chart's deployment keys (``enabled``, ``image``...) are
ignored with a warning, and settings whose meaning changed are mapped onto the new ones
(see :mod:`shared.legacy`). The native format (top-level ``members``) is strict. Both
end in :class:`FederationConfig`. A bad file raises :class:`ConfigError` naming the file,
the key and the problem, so the process can exit before it serves anything; an unknown
key anywhere is such a problem, named with the closest known key (:mod:`shared.config_errors`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.config_errors import describe, no_members, typos_in_dropped
from shared.config_urls import http_url, redirect_paths, redirect_url
from shared.legacy import drop_unused_members, legacy_to_native

log = logging.getLogger("fedredirect.config")

ReferencePolicy = Literal["prime", "majority", "pinned"]
FallbackPolicy = Literal["prime", "all", "none"]
OtherPaths = Literal["proxy", "redirect", "404"]
LoadBalancer = Literal["rendezvous", "random", "bounded"]
#: How far a member's version may differ from the reference's and still count as the same:
#: ``minor`` same major, ``patch`` same major and minor, ``exact`` equal (shared.versions).
Compatibility = Literal["minor", "patch", "exact"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CheckConfig(_Strict):
    """How the checker polls members (seconds)."""

    period: float = Field(10.0, gt=0)
    jitter: float = Field(0.1, ge=0, lt=1)
    retries: int = Field(5, ge=0, le=20)
    timeout: float = Field(2.0, gt=0)
    failed_period: float = Field(300.0, gt=0)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    rise: int = Field(2, ge=1, le=20)  # consecutive good /health answers before "healthy"
    fall: int = Field(2, ge=1, le=20)  # consecutive bad /health answers before "failing"
    lease: float | None = Field(None, gt=0)  # HA writer lease; None: 3 x period
    # After a failed /health check, the member's next checks come this often (seconds)
    # until it has failed `fall` times or passes again (HAProxy's fastinter).
    fast_interval: float = Field(2.0, gt=0)

    @property
    def longest_round(self) -> float:
        """The longest one round of checks of a member can take. Its first attempt may use
        the whole ``timeout``; a retry starts only if it can end within the period (the
        checker's deadline, see ``checker.probe.fetch_parsed``), so however many attempts
        there are, a round never outlasts both the timeout and the period."""
        return max(self.timeout, self.period)

    @property
    def longest_refresh(self) -> float:
        """The longest a member's record can go unrefreshed while its checks run: from the
        end of a quick round to the end of the next, which starts at most a period
        stretched by jitter later and lasts at most :attr:`longest_round`. Rounded to the
        millisecond, so the minimum a message names is the one that is accepted."""
        return round(self.period * (1 + self.jitter) + self.longest_round, 3)


class MemberConfig(_Strict):
    """One federation member as configured."""

    url: str
    weight: float = Field(ge=0)
    prime: bool = False
    health: str = ""
    versions: str = ""
    metrics: str | Literal[False] = ""  # its launch counts (outcomes); False: not read

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @field_validator("health", "versions", "metrics")
    @classmethod
    def _endpoint(cls, value: str | Literal[False]) -> str | Literal[False]:
        return http_url(value) if value else value

    @model_validator(mode="after")
    def _default_endpoints(self) -> MemberConfig:
        # Frozen model: fill the derived endpoint URLs through object.__setattr__ once.
        if not self.health:
            object.__setattr__(self, "health", self.url + "/health")
        if not self.versions:
            object.__setattr__(self, "versions", self.url + "/versions")
        if self.metrics == "":
            object.__setattr__(self, "metrics", self.url + "/metrics")
        return self


class VersionsConfig(_Strict):
    """How the reference version is chosen and compared."""

    reference: ReferencePolicy | None = None  # None: prime if a member is prime, else majority
    pinned: dict[str, str] | None = None
    keys: list[str] | None = None  # None: every key of the reference
    # None: 3 x check.period, or check.longest_refresh when that is longer
    max_age: float | None = Field(None, gt=0)
    min_dwell: float | None = Field(None, ge=0)  # None: 2 x check.period
    # Per version key; a key not named here compares exactly.
    compatible: dict[str, Compatibility] = Field(default_factory=dict)


class FixedRedirect(_Strict):
    """A path the router always answers with the same redirect (README badges, say)."""

    url: str
    status: Literal[301, 302, 307, 308] = 301

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return redirect_url(value)


class OutageConfig(_Strict):
    """What routers do when the checker's heartbeat stops (checker or Redis down)."""

    max_staleness: float | None = Field(None, gt=0)  # None: 3 x check.period
    policy: Literal["keep", "all"] = "keep"


class HistoryConfig(_Strict):
    """What the checker keeps of the past, in a capped Redis stream (docs/history.md)."""

    max_age: float = Field(14 * 86400, gt=0)  # seconds of history kept
    # 14 days of 10 members and 2 routers: 10 x 288 observations and 2 x 1,440 launch
    # counts a day, plus transitions, x 14 = 81,200; about 32 MB of Redis
    # (bench/history_memory.py)
    max_entries: int = Field(100_000, gt=0)
    observation_interval: float = Field(300.0, gt=0)  # a member's record at most this often


class BoundedLoadConfig(_Strict):
    """``load_balancer: bounded``: a member past ``factor`` times its weighted share of this
    router's launches over the last ``window`` seconds is passed over (shared.bounded)."""

    factor: float = Field(1.25, gt=1)
    window: float = Field(60.0, gt=0)


class OutcomesConfig(_Strict):
    """Judging members by their own launch outcomes, read from their /metrics
    (shared.outcomes): a member failing too many launches is ejected for a while."""

    enabled: bool = True
    # Seconds of launches a ratio is taken over; None: 2 x check.period, so that a member
    # failing half its launches is past max_failure_ratio by its second metrics read.
    window: float | None = Field(None, gt=0)
    max_failure_ratio: float = Field(0.25, gt=0, lt=1)  # failures / launches above: ejected
    min_launches: int = Field(10, ge=1)  # fewer launches in the window: not judged
    base_ejection: float = Field(30.0, gt=0)  # the first ejection; the n-th lasts n times
    max_ejection: float = Field(300.0, gt=0)  # however many ejections in a row
    max_ejected_share: float = Field(0.34, ge=0, le=1)  # of the members, at once; never all

    @model_validator(mode="after")
    def _ejections(self) -> OutcomesConfig:
        if self.max_ejection < self.base_ejection:
            raise ValueError(
                f"outcomes.max_ejection: {self.max_ejection:g}s is shorter than "
                f"outcomes.base_ejection ({self.base_ejection:g}s)"
            )
        return self


class FederationConfig(_Strict):
    """The whole federation: members and every policy the core applies."""

    members: dict[str, MemberConfig]
    check: CheckConfig = CheckConfig()
    load_balancer: LoadBalancer = "rendezvous"
    pod_headroom: int | str = 10  # pods kept free, or a share of the quota: "10%"
    bounded_load: BoundedLoadConfig = BoundedLoadConfig()
    # Seconds a member that is eligible again (or new) takes to ramp to its full weight; 0: off
    slow_start: float = Field(300.0, ge=0)
    host_cookie_age_hours: float = Field(4.0, ge=0)
    versions: VersionsConfig = VersionsConfig()
    # None: 3 x check.period, or check.longest_refresh when that is longer
    record_max_age: float | None = Field(None, gt=0)
    fallback: FallbackPolicy | None = None  # None: prime if a member is prime, else all
    other_paths: OtherPaths = "proxy"
    outage: OutageConfig = OutageConfig()
    redirects: dict[str, FixedRedirect] = Field(default_factory=dict)
    history: HistoryConfig = HistoryConfig()
    outcomes: OutcomesConfig = OutcomesConfig()

    @field_validator("redirects", mode="before")
    @classmethod
    def _redirects(cls, value: object) -> object:
        return redirect_paths(value)

    @field_validator("pod_headroom")
    @classmethod
    def _pod_headroom(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("must be a count of pods (0 or more) or a share such as '10%'")
            return value
        found = re.fullmatch(r"(\d{1,3}(?:\.\d+)?)%", value)
        if found is None or float(found.group(1)) > 100:
            raise ValueError(
                f"must be a count of pods or a share of the quota such as '10%', got {value!r}"
            )
        return value

    @field_validator("members")
    @classmethod
    def _members(cls, members: dict[str, MemberConfig]) -> dict[str, MemberConfig]:
        if not members:
            raise ValueError("no members with a weight above 0 are configured")
        seen: dict[str, str] = {}
        for name, member in members.items():
            if not name or any(not (c.isalnum() or c in "-_.") for c in name):
                raise ValueError(f"member name {name!r} may only use letters, digits, - _ .")
            if member.url.lower() in seen:
                raise ValueError(
                    f"members {seen[member.url.lower()]!r} and {name!r} share the url {member.url}"
                )
            seen[member.url.lower()] = name
        primes = [name for name, m in members.items() if m.prime]
        if len(primes) > 1:
            raise ValueError(f"only one member may be prime, got {', '.join(primes)}")
        return members

    @model_validator(mode="after")
    def _policies(self) -> FederationConfig:
        prime = self.prime_name
        v = self.versions
        # "KEY: problem" messages: shared.config_errors reports KEY as the key at fault.
        if v.reference == "prime" and prime is None:
            raise ValueError("versions.reference: is 'prime' but no member is marked prime")
        if v.reference == "pinned" and not v.pinned:
            raise ValueError("versions.pinned: must give the versions when reference is 'pinned'")
        if v.keys is not None and not v.keys:
            raise ValueError("versions.keys: must list at least one key (or be omitted)")
        if v.reference == "pinned" and v.pinned and v.keys:
            missing = [key for key in v.keys if key not in v.pinned]
            if missing:
                raise ValueError(
                    f"versions.keys: {', '.join(missing)} not in versions.pinned; every member "
                    "would mismatch and version gating would never apply"
                )
        if self.fallback == "prime" and prime is None:
            raise ValueError("fallback: is 'prime' but no member is marked prime")
        refresh = self.check.longest_refresh
        if self.record_max_age is not None and self.record_max_age < refresh:
            # Shorter, a member whose checks hang would go stale between two of its rounds.
            raise ValueError(
                f"record_max_age: {self.record_max_age:g}s is shorter than a member's record "
                f"can go unrefreshed while its checks run ({refresh:g}s: check.period "
                "x (1 + check.jitter) + the longer of check.timeout and check.period); "
                f"set at least {refresh:g} or leave it out"
            )
        return self

    @property
    def prime_name(self) -> str | None:
        return next((name for name, m in self.members.items() if m.prime), None)

    @property
    def reference_policy(self) -> ReferencePolicy:
        if self.versions.reference is not None:
            return self.versions.reference
        return "prime" if self.prime_name is not None else "majority"

    @property
    def fallback_policy(self) -> FallbackPolicy:
        if self.fallback is not None:
            return self.fallback
        return "prime" if self.prime_name is not None else "all"

    @property
    def versions_max_age(self) -> float:
        """Versions older than this are not compared: ``versions.max_age``, else as long as
        a record may go unrefreshed (:attr:`stale_after`'s default): a /versions answer
        comes once a round, however long a hung /health makes the round."""
        return self.versions.max_age or max(3 * self.check.period, self.check.longest_refresh)

    @property
    def versions_min_dwell(self) -> float:
        v = self.versions.min_dwell
        return 2 * self.check.period if v is None else v

    @property
    def outcomes_window(self) -> float:
        """The seconds of launches a failure ratio is taken over (``outcomes.window``)."""
        return self.outcomes.window or 2 * self.check.period

    @property
    def lease_seconds(self) -> float:
        return self.check.lease or 3 * self.check.period

    @property
    def max_staleness(self) -> float:
        return self.outage.max_staleness or 3 * self.check.period

    @property
    def stale_after(self) -> float:
        """A record older than this is stale: ``record_max_age``, else three periods, or
        longer when a round of checks can take longer than that (a timeout above a period)."""
        if self.record_max_age is not None:
            return self.record_max_age
        return max(3 * self.check.period, self.check.longest_refresh)

    @property
    def cookie_max_age_seconds(self) -> int:
        return int(self.host_cookie_age_hours * 3600)


class ConfigError(Exception):
    """A configuration that cannot be served; the message names the file, key and problem."""


@dataclass(frozen=True)
class LoadedConfig:
    """A valid config, and what was ignored in the file to read it (one line each)."""

    config: FederationConfig
    warnings: tuple[str, ...]


def check_config(raw: object, source: str = "<config>") -> LoadedConfig:
    """Validate an already-decoded config document (legacy or native): the config and the
    warnings for what was ignored, or :class:`ConfigError`. Pure: nothing is logged."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of settings")
    doc = dict(raw)
    if "hosts" in doc and "members" in doc:
        raise ConfigError(f"{source}: key 'hosts': give either 'hosts' (legacy) or 'members'")
    section = "hosts" if "hosts" in doc else "members"
    if section not in doc:
        raise ConfigError(no_members(doc, source, {*FederationConfig.model_fields, "hosts"}))
    warnings: list[str] = []
    if section == "hosts":
        doc, warnings = legacy_to_native(doc, source)
    given = doc[section]
    if isinstance(given, dict):
        doc[section] = dict(given)  # members are dropped from this copy; given stays whole
    warnings += drop_unused_members(doc, section, source)
    problems = typos_in_dropped(given, doc[section], MemberConfig, section, source)
    doc["members"] = doc.pop(section)
    try:
        config = FederationConfig.model_validate(doc)
    except ValidationError as exc:
        described = describe(exc, FederationConfig, source, section)
        raise ConfigError("\n".join([*problems, described])) from None
    if problems:
        raise ConfigError("\n".join(problems))
    return LoadedConfig(config, tuple(warnings))


def parse_config(raw: object, source: str = "<config>") -> FederationConfig:
    """Validate an already-decoded config document; warnings go to the log."""
    loaded = check_config(raw, source)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return loaded.config


def load_config(path: str | Path) -> FederationConfig:
    """Read and validate a config file; JSON and YAML are both accepted. Warnings are logged."""
    loaded = read_config(path)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return loaded.config


def read_config(path: str | Path) -> LoadedConfig:
    """Read and validate a config file: the config and what was ignored in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the file is not UTF-8 text") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    return check_config(raw, str(path))


def config_to_json(config: FederationConfig) -> dict[str, Any]:
    """The config as published for routers (native shape, every default made explicit)."""
    return config.model_dump(mode="json")


def config_from_json(data: Mapping[str, Any]) -> FederationConfig:
    return FederationConfig.model_validate(data)


def effective_config(config: FederationConfig) -> dict[str, Any]:
    """The config with every default filled in, derived ones included (``lease`` 3 periods,
    ``versions.reference`` from the prime, ``record_max_age`` from the period and the
    timeout...), in the native shape: loading it again gives
    the same effective config. ``versions.keys`` null means every key of the reference."""
    doc = config_to_json(config)
    doc["check"]["lease"] = config.lease_seconds
    doc["versions"]["reference"] = config.reference_policy
    doc["versions"]["max_age"] = config.versions_max_age
    doc["versions"]["min_dwell"] = config.versions_min_dwell
    doc["record_max_age"] = config.stale_after
    doc["fallback"] = config.fallback_policy
    doc["outage"]["max_staleness"] = config.max_staleness
    doc["outcomes"]["window"] = config.outcomes_window
    return doc
