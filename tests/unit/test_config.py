"""Loading and validating the federation config: legacy JSON, native YAML, and every error."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import (
    ConfigError,
    FederationConfig,
    check_config,
    effective_config,
    load_config,
    parse_config,
    read_config,
)

LEGACY_EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-config.example.json"


def member(name: str, weight: Any = 10, **extra: Any) -> dict[str, Any]:
    return {"url": f"https://{name}.example.org", "weight": weight, **extra}


def write(tmp_path: Path, doc: Any, name: str = "federation.yaml") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


# --- the legacy example -------------------------------------------------------------------


def test_legacy_example_loads_unchanged() -> None:
    config = load_config(LEGACY_EXAMPLE)

    assert list(config.members) == ["alpha", "beta", "gamma"]  # null and weight 0 dropped
    alpha, beta, gamma = (config.members[n] for n in ("alpha", "beta", "gamma"))
    assert alpha.url == "https://alpha.example.org"  # trailing slash stripped
    assert (alpha.weight, beta.weight, gamma.weight) == (50, 50, 30)
    assert (alpha.prime, beta.prime, gamma.prime) == (True, False, False)
    assert alpha.health == "https://alpha.example.org/health"
    assert gamma.versions == "https://gamma.example.org/versions"
    assert config.prime_name == "alpha"
    check = config.check
    # mapped from the replaced redirector's meaning: 5 attempts, jitter ±0.1/2
    assert (check.period, check.jitter, check.retries, check.timeout, check.failed_period) == (
        15,
        0.05,
        4,
        5,
        90,
    )
    assert config.load_balancer == "rendezvous"
    assert config.pod_headroom == 10
    assert config.host_cookie_age_hours == 4
    assert config.cookie_max_age_seconds == 4 * 3600
    assert config.reference_policy == "prime"
    assert config.fallback_policy == "prime"
    assert config.versions_max_age == 45
    assert config.stale_after == 45


def test_legacy_example_logs_each_dropped_member(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fedredirect.config"):
        load_config(LEGACY_EXAMPLE)

    messages = [r.getMessage() for r in caplog.records if r.name == "fedredirect.config"]
    assert any("hosts.retired is null; dropped" in m for m in messages), messages
    assert any("hosts.paused has weight 0; dropped" in m for m in messages), messages
    assert all(str(LEGACY_EXAMPLE) in m for m in messages)
    assert not any("alpha" in m or "beta" in m or "gamma" in m for m in messages)


def test_legacy_example_is_not_modified_by_loading() -> None:
    before = LEGACY_EXAMPLE.read_bytes()
    load_config(LEGACY_EXAMPLE)
    assert LEGACY_EXAMPLE.read_bytes() == before


# --- defaults and derived values ----------------------------------------------------------


def test_defaults_of_a_minimal_config() -> None:
    config = parse_config({"members": {"a": member("a")}})

    check = config.check
    assert check.period == 10
    assert check.jitter == 0.1
    assert check.retries == 5
    assert check.timeout == 2
    assert check.failed_period == 300
    assert config.load_balancer == "rendezvous"
    assert config.pod_headroom == 10
    assert config.host_cookie_age_hours == 4
    assert config.cookie_max_age_seconds == 14_400
    assert config.members["a"].health == "https://a.example.org/health"
    assert config.members["a"].versions == "https://a.example.org/versions"


def test_policies_default_to_prime_when_a_member_is_prime() -> None:
    config = parse_config({"members": {"a": member("a", prime=True), "b": member("b")}})
    assert config.prime_name == "a"
    assert config.reference_policy == "prime"
    assert config.fallback_policy == "prime"


def test_policies_default_to_majority_and_all_without_a_prime() -> None:
    config = parse_config({"members": {"a": member("a"), "b": member("b")}})
    assert config.prime_name is None
    assert config.reference_policy == "majority"
    assert config.fallback_policy == "all"


def test_explicit_policies_override_the_defaults() -> None:
    config = parse_config(
        {
            "members": {"a": member("a", prime=True)},
            "versions": {"reference": "majority"},
            "fallback": "none",
        }
    )
    assert config.reference_policy == "majority"
    assert config.fallback_policy == "none"


@pytest.mark.parametrize("period", [1, 10, 15, 60.5])
def test_ages_default_to_three_periods(period: float) -> None:
    # timeout 1: a round never outlasts a period, so three periods cover it
    check = {"period": period, "timeout": 1}
    config = parse_config({"members": {"a": member("a")}, "check": check})
    assert config.versions_max_age == 3 * period
    assert config.stale_after == 3 * period


def test_explicit_ages_override_three_periods() -> None:
    config = parse_config(
        {
            "members": {"a": member("a")},
            "versions": {"max_age": 100},
            "record_max_age": 25,  # the defaults' record goes 21 s unrefreshed at most
        }
    )
    assert config.versions_max_age == 100
    assert config.stale_after == 25


# --- native YAML ----------------------------------------------------------------------------


NATIVE_YAML = """\
members:
  gesis:
    url: https://notebooks.gesis.org/binder/
    weight: 60
    prime: true
  ovh:
    url: https://ovh.mybinder.org
    weight: 40
    health: https://ovh.mybinder.org/health?x=1
  idle:
    url: https://idle.example.org
    weight: 0
check:
  period: 5
  retries: 2
load_balancer: random
pod_headroom: 3
versions:
  reference: majority
  keys: [binderhub]
  max_age: 60
fallback: all
other_paths: redirect
"""


def test_native_yaml_loads(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(NATIVE_YAML.replace("?x=1", ""), encoding="utf-8")

    config = load_config(path)

    assert list(config.members) == ["gesis", "ovh"]  # weight 0 dropped here too
    assert config.members["gesis"].url == "https://notebooks.gesis.org/binder"
    assert config.members["gesis"].health == "https://notebooks.gesis.org/binder/health"
    assert config.members["ovh"].health == "https://ovh.mybinder.org/health"
    assert config.check.period == 5
    assert config.check.retries == 2
    assert config.check.timeout == 2  # default kept
    assert config.load_balancer == "random"
    assert config.pod_headroom == 3
    assert config.reference_policy == "majority"
    assert config.versions.keys == ["binderhub"]
    assert config.versions_max_age == 60
    assert config.stale_after == 15
    assert config.fallback_policy == "all"
    assert config.other_paths == "redirect"


def test_yml_suffix_is_read_as_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, {"members": {"a": member("a")}}, "f.yml")
    assert list(load_config(path).members) == ["a"]


def test_endpoint_with_a_query_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(NATIVE_YAML, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "members.ovh.health" in message
    assert "query" in message


# --- every invalid case names the file, the key and the problem --------------------------


INVALID: list[tuple[str, str, Any, str, str]] = [
    # (id, file name, document, key named, problem named)
    (
        "unknown-top-level-key",
        "f.yaml",
        {"members": {"a": member("a")}, "colour": "blue"},
        "'colour'",
        "unknown key",
    ),
    (
        "unknown-top-level-key-legacy",  # only the chart's deployment keys are ignored there
        "f.json",
        {"hosts": {"a": member("a")}, "colour": "blue", "enabled": True},
        "'colour'",
        "unknown key",
    ),
    (
        "unknown-nested-key",
        "f.json",
        {"hosts": {"a": member("a", colour="blue")}},
        "hosts.a.colour",
        "unknown key",
    ),
    (
        "unknown-check-key",
        "f.yaml",
        {"members": {"a": member("a")}, "check": {"perod": 5}},
        "check.perod",
        "unknown key",
    ),
    (
        "string-weight",
        "f.json",
        {"hosts": {"a": member("a", weight="50")}},
        "hosts.a.weight",
        "valid number",
    ),
    (
        "string-period",
        "f.json",
        {"hosts": {"a": member("a")}, "check": {"period": "15"}},
        "check.period",
        "valid number",
    ),
    ("no-members", "f.yaml", {"members": {}}, "members", "no members"),
    ("no-hosts", "f.json", {"hosts": {}}, "hosts", "no members"),
    ("members-missing", "f.yaml", {"check": {"period": 5}}, "members", "no members"),
    (
        "all-weight-0",
        "f.json",
        {"hosts": {"a": member("a", 0), "b": member("b", 0), "c": None}},
        "hosts",
        "no members with a weight above 0",
    ),
    (
        "duplicate-url",
        "f.json",
        {"hosts": {"a": member("a"), "b": {"url": "https://a.example.org", "weight": 1}}},
        "hosts",
        "share the url https://a.example.org",
    ),
    (
        "duplicate-url-trailing-slash",
        "f.json",
        {"hosts": {"a": member("a"), "b": {"url": "https://a.example.org/", "weight": 1}}},
        "hosts",
        "share the url",
    ),
    (
        "duplicate-url-case",
        "f.yaml",
        {"members": {"a": member("a"), "b": {"url": "https://A.example.org", "weight": 1}}},
        "members",
        "share the url",
    ),
    (
        "ftp-url",
        "f.json",
        {"hosts": {"a": {"url": "ftp://a.example.org", "weight": 1}}},
        "hosts.a.url",
        "http(s) URL",
    ),
    (
        "url-without-host",
        "f.json",
        {"hosts": {"a": {"url": "https:///binder", "weight": 1}}},
        "hosts.a.url",
        "with a host",
    ),
    (
        "url-without-scheme",
        "f.yaml",
        {"members": {"a": {"url": "a.example.org", "weight": 1}}},
        "members.a.url",
        "http(s) URL",
    ),
    (
        "ftp-health-endpoint",
        "f.yaml",
        {"members": {"a": member("a", health="ftp://a.example.org/health")}},
        "members.a.health",
        "http(s) URL",
    ),
    (
        "negative-weight",
        "f.json",
        {"hosts": {"a": member("a"), "b": member("b", -1)}},
        "hosts.b.weight",
        "greater than or equal to 0",
    ),
    (
        "missing-url",
        "f.json",
        {"hosts": {"a": {"weight": 3}}},
        "hosts.a.url",
        "required",
    ),
    (
        "two-primes",
        "f.json",
        {"hosts": {"a": member("a", prime=True), "b": member("b", prime=True)}},
        "hosts",
        "only one member may be prime, got a, b",
    ),
    (
        "pinned-without-versions",
        "f.yaml",
        {"members": {"a": member("a")}, "versions": {"reference": "pinned"}},
        "versions.pinned",
        "must give the versions when reference is 'pinned'",
    ),
    (
        "pinned-keys-not-pinned",
        "f.yaml",
        {
            "members": {"a": member("a")},
            "versions": {
                "reference": "pinned",
                "pinned": {"binderhub": "1"},
                "keys": ["binderhub", "builder"],
            },
        },
        "versions.keys",
        "builder not in versions.pinned",
    ),
    (
        "pinned-with-empty-versions",
        "f.yaml",
        {"members": {"a": member("a")}, "versions": {"reference": "pinned", "pinned": {}}},
        "versions.pinned",
        "must give the versions when reference is 'pinned'",
    ),
    (
        "reference-prime-without-prime",
        "f.yaml",
        {"members": {"a": member("a")}, "versions": {"reference": "prime"}},
        "versions.reference",
        "no member is marked prime",
    ),
    (
        "fallback-prime-without-prime",
        "f.yaml",
        {"members": {"a": member("a")}, "fallback": "prime"},
        "fallback",
        "no member is marked prime",
    ),
    (
        "unknown-reference-policy",
        "f.yaml",
        {"members": {"a": member("a")}, "versions": {"reference": "newest"}},
        "versions.reference",
        "'prime', 'majority' or 'pinned'",
    ),
    (
        "empty-keys",
        "f.yaml",
        {"members": {"a": member("a")}, "versions": {"keys": []}},
        "versions.keys",
        "at least one key",
    ),
    (
        "bad-member-name",
        "f.yaml",
        {"members": {"a b": member("a")}},
        "members",
        "member name 'a b'",
    ),
    (
        "hosts-and-members",
        "f.yaml",
        {"hosts": {"a": member("a")}, "members": {"b": member("b")}},
        "hosts",
        "either 'hosts' (legacy) or 'members'",
    ),
    ("top-level-list", "f.yaml", [{"members": {}}], "top level", "must be a mapping"),
    ("top-level-scalar", "f.json", 42, "top level", "must be a mapping"),
]


@pytest.mark.parametrize(
    ("name", "document", "key", "problem"),
    [pytest.param(name, doc, key, problem, id=case) for case, name, doc, key, problem in INVALID],
)
def test_invalid_config_names_file_key_and_problem(
    tmp_path: Path, name: str, document: Any, key: str, problem: str
) -> None:
    path = write(tmp_path, document, name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert problem in message


def test_each_problem_gets_its_own_line(tmp_path: Path) -> None:
    doc = {"hosts": {"a": member("a", weight="x"), "b": {"url": "ftp://b", "weight": 1}}}
    path = write(tmp_path, doc, "f.json")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert any("hosts.a.weight" in line for line in lines)
    assert any("hosts.b.url" in line for line in lines)
    assert all(line.startswith(f"{path}: key ") for line in lines)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("federation.yaml", b"members:\n  a: {url: [unclosed\n", "not valid yaml"),
        ("federation.json", b'{"hosts": {"a": }', "not valid json"),
        ("federation.yaml", b"members:\n  \xff\xfe: 1\n", "not UTF-8"),
        ("nope.yaml", None, "cannot read the file"),
    ],
    ids=["invalid-yaml-syntax", "invalid-json-syntax", "non-utf8-file", "missing-file"],
)
def test_a_file_that_cannot_be_read_names_itself_and_why(
    tmp_path: Path, name: str, content: bytes | None, says: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert says in str(info.value)


def test_empty_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "cannot read the file" in str(info.value)


def test_parse_config_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"^inline: key 'members.a.url'"):
        parse_config({"members": {"a": {"url": "ftp://x", "weight": 1}}}, "inline")


def test_parse_config_does_not_mutate_its_input() -> None:
    raw = {"hosts": {"a": member("a"), "gone": None, "idle": member("idle", 0)}}
    snapshot = json.loads(json.dumps(raw))
    parse_config(raw)
    assert raw == snapshot


def test_weight_zero_members_are_dropped_but_others_kept() -> None:
    config = parse_config({"hosts": {"a": member("a", 0), "b": member("b", 0.5)}})
    assert list(config.members) == ["b"]
    assert isinstance(config, FederationConfig)


def test_boolean_weight_is_a_type_error() -> None:
    # Regression: false == 0, so the member used to be dropped silently as "weight 0".
    with pytest.raises(ConfigError, match=r"hosts\.b\.weight"):
        parse_config({"hosts": {"a": member("a"), "b": member("b", weight=False)}})


# --- drop-in: the configs mybinder.org-deploy renders --------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROD = FIXTURES / "mybinder-prod-config.json"  # rendered by mybinder.org-deploy's chart
OLDER = FIXTURES / "mybinder-older-config.json"  # stray nulls, a weight-0 prime


def test_the_rendered_production_config_loads_with_one_warning() -> None:
    loaded = read_config(PROD)
    assert loaded.warnings == (
        f"{PROD}: ignored keys the redirector does not use: "
        "enabled, host, image, nodeSelector, resources",
    )
    config = loaded.config
    assert list(config.members) == ["hetzner-2i2c", "hetzner-gesis", "bids-ovh"]
    assert config.prime_name == "hetzner-2i2c"
    assert config.load_balancer == "random"
    assert config.pod_headroom == 10
    # the replaced redirector's meanings: 5 attempts = 4 retries; ±jitter/2
    assert (config.check.retries, config.check.jitter) == (4, 0.05)
    assert (config.check.period, config.check.timeout, config.check.failed_period) == (15, 5, 90)


def test_an_older_rendered_config_ignores_nulls_and_weight_zero_members() -> None:
    loaded = read_config(OLDER)
    assert list(loaded.config.members) == ["ovh2", "gesis"]
    assert loaded.config.prime_name is None  # the weight-0 prime is dropped first
    assert loaded.config.members["ovh2"].url == "https://ovh2.mybinder.org"
    assert loaded.config.check.failed_period == 300  # null: the replaced one's default
    assert loaded.warnings == (
        f"{OLDER}: ignored keys the redirector does not use: "
        "enabled, host, image, nodeSelector, resources",
        f"{OLDER}: hosts.ovh2: ignored keys set to null: cordon",
        f"{OLDER}: hosts.gesis: ignored keys set to null: prime",
        f"{OLDER}: check: ignored keys set to null: failed_period",
        f"{OLDER}: hosts.gke has weight 0; dropped",
        f"{OLDER}: hosts.turing is null; dropped",
    )


def test_loading_logs_each_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fedredirect.config"):
        load_config(OLDER)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert logged == list(read_config(OLDER).warnings)


@pytest.mark.parametrize(("legacy", "retries"), [(0, 0), (1, 0), (2, 1), (5, 4), (21, 20)])
def test_legacy_retries_counted_every_attempt(legacy: int, retries: int) -> None:
    config = parse_config({"check": {"retries": legacy}, "hosts": {"a": member("a")}})
    assert config.check.retries == retries


@pytest.mark.parametrize(("legacy", "jitter"), [(0, 0), (0.1, 0.05), (0.5, 0.25), (1.5, 0.75)])
def test_legacy_jitter_spread_half_each_way(legacy: float, jitter: float) -> None:
    config = parse_config({"check": {"jitter": legacy}, "hosts": {"a": member("a")}})
    assert config.check.jitter == jitter


def test_legacy_check_keys_left_out_take_the_replaced_redirectors_defaults() -> None:
    legacy = parse_config({"hosts": {"a": member("a")}}).check
    assert (legacy.period, legacy.jitter, legacy.retries, legacy.timeout) == (10, 0.05, 4, 2)
    assert legacy.failed_period == 300
    native = parse_config({"members": {"a": member("a")}}).check
    assert (native.jitter, native.retries) == (0.1, 5)  # native keys mean what they say


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"hosts": {"a": member("a", wieght=3)}},
            "key 'hosts.a.wieght': unknown key; did you mean 'weight'?",
        ),
        ({"hosts": {"a": member("a", weight="heavy")}}, "key 'hosts.a.weight'"),
        (
            {"check": {"perod": 3}, "hosts": {"a": member("a")}},
            "key 'check.perod': unknown key; did you mean 'period'?",
        ),
        ({"chek": {"period": 1}, "hosts": {"a": member("a")}}, "key 'chek': unknown key"),
        ({"check": {"retries": "5"}, "hosts": {"a": member("a")}}, "key 'check.retries'"),
        ({"pod_headroom": -1, "hosts": {"a": member("a")}}, "key 'pod_headroom'"),
        ({"load_balancer": "roundrobin", "hosts": {"a": member("a")}}, "key 'load_balancer'"),
        ({"hosts": {"a": {"weight": 1}}}, "key 'hosts.a.url': Field required"),
    ],
)
def test_what_the_redirector_uses_stays_strictly_checked(doc: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "prod.json")
    assert f"prod.json: {message}" in str(info.value)


@pytest.mark.parametrize(
    "doc",
    [
        {"members": {"a": member("a")}, "enabled": True},
        {"members": {"a": member("a")}, "pod_headroom": None},
        {"members": {"a": member("a", prime=None)}},
    ],
)
def test_the_native_format_stays_strict(doc: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config(doc)


# --- fixed redirects ----------------------------------------------------------------------------

BADGES = {
    "/badge_logo.svg": "https://static.mybinder.org/badge_logo.svg",
    "/badge.svg": "https://static.mybinder.org/badge.svg",
    "/assets/images/badge.svg": {"url": "https://static.mybinder.org/badge.svg", "status": 308},
}


@pytest.mark.parametrize("section", ["members", "hosts"])
def test_redirects_in_either_format(section: str) -> None:
    config = parse_config({"redirects": BADGES, section: {"a": member("a")}})
    got = {path: (r.url, r.status) for path, r in config.redirects.items()}
    assert got == {
        "/badge_logo.svg": ("https://static.mybinder.org/badge_logo.svg", 301),
        "/badge.svg": ("https://static.mybinder.org/badge.svg", 301),
        "/assets/images/badge.svg": ("https://static.mybinder.org/badge.svg", 308),
    }


@pytest.mark.parametrize(
    ("redirects", "message"),
    [
        ({"badge.svg": "https://x.org/b"}, "must start with /"),
        ({"/b c": "https://x.org/b"}, "printable ASCII"),
        ({"/b?x=1": "https://x.org/b"}, "no query"),
        ({"/build/gh/x": "https://x.org/b"}, "the router's own"),
        ({"/status": "https://x.org/b"}, "the router's own"),
        ({"/b": "/relative"}, "absolute http(s) URL"),
        ({"/b": "ftp://x.org/b"}, "absolute http(s) URL"),
        ({"/b": {"url": "https://x.org/b", "status": 303}}, "redirects./b.status"),
        ({"/b": {"url": "https://x.org/b", "code": 302}}, "unknown key"),
        ({"/b": 3}, "redirects./b"),
    ],
)
def test_bad_redirects_are_named(redirects: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"redirects": redirects, "members": {"a": member("a")}}, "f.yaml")
    assert message in str(info.value)
    assert "f.yaml: key 'redirects" in str(info.value)


# --- the effective config -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PROD, OLDER, LEGACY_EXAMPLE])
def test_the_effective_config_loads_back_to_itself(path: Path) -> None:
    effective = effective_config(read_config(path).config)
    again = check_config(json.loads(json.dumps(effective)), "effective.json")
    assert again.warnings == ()
    assert effective_config(again.config) == effective
    assert effective["check"]["lease"] == 3 * effective["check"]["period"]
    assert None not in (
        effective["versions"]["reference"],
        effective["versions"]["max_age"],
        effective["versions"]["min_dwell"],
        effective["record_max_age"],
        effective["fallback"],
        effective["outage"]["max_staleness"],
    )
