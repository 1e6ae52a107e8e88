"""A config key nobody reads is a typo: refused anywhere in either format, each one named
with the closest known key; only mybinder.org-deploy's deployment keys are still ignored."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel

from shared.config import (
    CheckConfig,
    ConfigError,
    FederationConfig,
    FixedRedirect,
    HistoryConfig,
    MemberConfig,
    OutageConfig,
    OutcomesConfig,
    VersionsConfig,
    check_config,
    read_config,
)
from shared.legacy import DEPLOYMENT_KEYS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MYBINDER_CONFIGS = sorted(FIXTURES.glob("mybinder-*.json"))

#: (the members' section, the file name the messages name): legacy JSON, native YAML.
FORMATS = [("hosts", "prod.json"), ("members", "federation.yaml")]

#: Where a key can be misspelt: the path to the mapping ("@" is the members' section) and
#: the model whose fields that mapping holds.
PLACES: dict[str, tuple[tuple[str, ...], type[BaseModel]]] = {
    "top level": ((), FederationConfig),
    "check": (("check",), CheckConfig),
    "versions": (("versions",), VersionsConfig),
    "outcomes": (("outcomes",), OutcomesConfig),
    "outage": (("outage",), OutageConfig),
    "history": (("history",), HistoryConfig),
    "a redirect": (("redirects", "/badge.svg"), FixedRedirect),
    "a member": (("@", "gesis"), MemberConfig),
    "a member of weight 0": (("@", "idle"), MemberConfig),
}


def federation(section: str) -> dict[str, Any]:
    """A valid file with every section present, so that a key can go anywhere."""
    return {
        section: {
            "gesis": {"url": "https://gesis.example.org", "weight": 50},
            "idle": {"url": "https://idle.example.org", "weight": 0},  # dropped before checks
        },
        "check": {"period": 5},
        "versions": {"compatible": {"binderhub": "minor"}},
        "outcomes": {"window": 60},
        "outage": {"policy": "keep"},
        "history": {"max_age": 3600},
        "redirects": {"/badge.svg": {"url": "https://static.example.org/badge.svg"}},
    }


def settings_at(section: str, place: str) -> set[str]:
    """The settings the mapping at ``place`` holds in this format: what a typo may mean."""
    fields = set(PLACES[place][1].model_fields)
    if place == "top level" and section == "hosts":
        return fields - {"members"} | {"hosts"}
    return fields


def known_at(section: str, place: str) -> set[str]:
    """The keys the mapping at ``place`` may hold in this format: its settings, and beside
    ``hosts`` the deployment keys too."""
    if place == "top level" and section == "hosts":
        return settings_at(section, place) | DEPLOYMENT_KEYS
    return settings_at(section, place)


def put(doc: dict[str, Any], section: str, place: str, key: str) -> str:
    """Set ``key`` in the mapping at ``place``; the key's path as a message names it."""
    parts = [section if part == "@" else part for part in PLACES[place][0]]
    target = doc
    for part in parts:
        target = target[part]
    target[key] = 1
    return ".".join([*parts, key])


def refusal(doc: Any, source: str) -> list[str]:
    """The lines of the error loading ``doc`` raises."""
    with pytest.raises(ConfigError) as info:
        check_config(doc, source)
    return str(info.value).splitlines()


def slips(key: str) -> set[str]:
    """A letter dropped or two neighbours swapped: the typos fingers make."""
    dropped = {key[:i] + key[i + 1 :] for i in range(len(key))}
    swapped = {key[:i] + key[i + 1] + key[i] + key[i + 2 :] for i in range(len(key) - 1)}
    return (dropped | swapped) - {key}


# --- the examples ----------------------------------------------------------------


@pytest.mark.parametrize(("section", "source"), FORMATS)
def test_a_misspelt_section_is_refused_and_the_meant_one_named(section: str, source: str) -> None:
    doc = {"chek": {"period": 1}, section: {"gesis": {"url": "https://g.example.org", "weight": 1}}}
    assert refusal(doc, source) == [f"{source}: key 'chek': unknown key; did you mean 'check'?"]


@pytest.mark.parametrize(("section", "source"), FORMATS)
def test_a_misspelt_member_key_is_refused_and_the_meant_one_named(
    section: str, source: str
) -> None:
    doc = {section: {"gesis": {"url": "https://g.example.org", "wieght": 60}}}
    assert refusal(doc, source) == [
        f"{source}: key '{section}.gesis.weight': Field required",
        f"{source}: key '{section}.gesis.wieght': unknown key; did you mean 'weight'?",
    ]


# --- anywhere, every one ---------------------------------------------------------------------


@given(st.sampled_from(FORMATS), st.sampled_from(sorted(PLACES)), st.data())
def test_a_slip_of_one_letter_anywhere_names_the_key_meant(
    fmt: tuple[str, str], place: str, data: st.DataObject
) -> None:
    section, source = fmt
    settings = settings_at(section, place)
    meant = data.draw(st.sampled_from(sorted(settings)), label="meant")
    typo = data.draw(st.sampled_from(sorted(slips(meant) - known_at(section, place))), label="typo")
    # a slip that is also one from another setting could mean either
    assume(not any(typo in slips(other) for other in settings - {meant}))
    doc = federation(section)
    path = put(doc, section, place, typo)
    assert refusal(doc, source) == [f"{source}: key '{path}': unknown key; did you mean '{meant}'?"]


# Not a second members' section: a file with both is refused for that, before anything else.
NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,11}", fullmatch=True).filter(
    lambda key: key not in ("hosts", "members")
)


@given(
    st.sampled_from(FORMATS),
    st.lists(st.tuples(st.sampled_from(sorted(PLACES)), NAMES), min_size=1, max_size=8),
)
def test_every_unknown_key_is_reported_not_only_the_first(
    fmt: tuple[str, str], keys: list[tuple[str, str]]
) -> None:
    section, source = fmt
    doc = federation(section)
    unknown = {
        put(doc, section, place, key) for place, key in keys if key not in known_at(section, place)
    }
    assume(unknown)
    lines = refusal(doc, source)
    reported = [
        re.fullmatch(rf"{re.escape(source)}: key '(.+)': unknown key(; .*)?", line)
        for line in lines
    ]
    assert all(reported), lines
    assert sorted(m[1] for m in reported if m) == sorted(unknown)


@pytest.mark.parametrize(("section", "source"), FORMATS)
def test_an_unknown_key_like_no_known_one_gets_no_guess(section: str, source: str) -> None:
    doc = federation(section)
    doc["colour"] = "blue"
    doc["check"]["xyzzy"] = 3
    assert refusal(doc, source) == [
        f"{source}: key 'check.xyzzy': unknown key",
        f"{source}: key 'colour': unknown key",
    ]


@pytest.mark.parametrize(("section", "source"), FORMATS)
def test_a_typo_in_a_member_of_weight_0_is_refused_though_the_member_is_dropped(
    section: str, source: str
) -> None:
    doc = federation(section)
    doc[section]["idle"]["helth"] = "https://idle.example.org/health"
    assert refusal(doc, source) == [
        f"{source}: key '{section}.idle.helth': unknown key; did you mean 'health'?"
    ]


def test_a_misspelt_deployment_key_is_refused_without_a_guess() -> None:
    # Deployment keys are never guessed: "hosst" is one letter from "host" too.
    doc = {"hosst": federation("hosts")["hosts"], "nodeselector": {}}
    assert refusal(doc, "prod.json") == [
        "prod.json: key 'hosst': unknown key; did you mean 'hosts'?",
        "prod.json: key 'nodeselector': unknown key",
        "prod.json: key 'members': missing; no members are configured",
    ]


def test_a_misspelt_members_section_is_named_beside_the_missing_one() -> None:
    doc: dict[str, Any] = {"hots": {"gesis": {"url": "https://g.example.org", "weight": 1}}}
    doc["chek"] = {}
    doc["image"] = {"name": "jupyterhub/mybinder.org-federation-redirect"}  # not a typo
    assert refusal(doc, "prod.json") == [
        "prod.json: key 'hots': unknown key; did you mean 'hosts'?",
        "prod.json: key 'chek': unknown key; did you mean 'check'?",
        "prod.json: key 'members': missing; no members are configured",
    ]


# --- what is still ignored ---------------------------------------------------------------------


def test_the_ignored_keys_are_the_ones_the_chart_renders_for_its_deployment() -> None:
    # mybinder.org-deploy's templates/federation-redirect/ read these from the block
    assert {"enabled", "host", "image", "resources", "nodeSelector"} == DEPLOYMENT_KEYS


def test_deployment_keys_beside_hosts_are_ignored_with_a_warning() -> None:
    doc = federation("hosts")
    deployment = {
        "enabled": True,
        "host": "mybinder.org",
        "image": {"name": "jupyterhub/mybinder.org-federation-redirect", "tag": "x"},
        "resources": {"requests": {"cpu": "10m"}},
        "nodeSelector": {},
    }
    loaded = check_config({**doc, **deployment}, "prod.json")
    assert loaded.warnings[0] == (
        "prod.json: ignored keys the redirector does not use: "
        "enabled, host, image, nodeSelector, resources"
    )
    assert loaded.config == check_config(doc, "prod.json").config


def test_a_deployment_key_beside_members_says_where_it_would_be_ignored() -> None:
    doc = federation("members")
    doc["nodeSelector"] = {}
    assert refusal(doc, "federation.yaml") == [
        "federation.yaml: key 'nodeSelector': unknown key; deployment keys are ignored only "
        "in the legacy format (beside 'hosts')"
    ]


def test_a_legacy_key_set_to_null_is_ignored_known_or_not() -> None:
    # Helm removes a key only by setting it to null: the older rendered file nulls `cordon`.
    doc = federation("hosts")
    doc["hosts"]["gesis"]["cordon"] = None
    doc["chek"] = None
    loaded = check_config(doc, "prod.json")
    assert "prod.json: top level: ignored keys set to null: chek" in loaded.warnings
    assert "prod.json: hosts.gesis: ignored keys set to null: cordon" in loaded.warnings


# --- the real configs -------------------------------------------------------------------------


def test_the_mybinder_fixtures_are_found() -> None:
    assert [p.name for p in MYBINDER_CONFIGS] == [
        "mybinder-older-config.json",
        "mybinder-prod-config.json",
    ]


@pytest.mark.parametrize(
    "path", [*MYBINDER_CONFIGS, FIXTURES / "legacy-config.example.json"], ids=lambda p: p.name
)
def test_every_mybinder_config_loads_and_its_deployment_keys_change_nothing(
    path: Path, tmp_path: Path
) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    loaded = read_config(path)
    rendered = sorted(DEPLOYMENT_KEYS & set(raw))
    ignored = [w for w in loaded.warnings if "the redirector does not use" in w]
    assert ignored == (
        [f"{path}: ignored keys the redirector does not use: {', '.join(rendered)}"]
        if rendered
        else []
    )
    served = {name for name, host in raw["hosts"].items() if host and host["weight"] > 0}
    assert set(loaded.config.members) == served
    without = tmp_path / path.name
    without.write_text(json.dumps({k: v for k, v in raw.items() if k not in DEPLOYMENT_KEYS}))
    assert read_config(without).config == loaded.config


# --- the README's config reference ---------------------------------------------------------

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def readme_block(after: str, language: str) -> str:
    start = README.index(f"```{language}\n", README.index(after)) + len(language) + 4
    return README[start : README.index("```", start)]


#: Where the README's complete file shows each place's keys.
SHOWN_AT = {
    "top level": (),
    "check": ("check",),
    "versions": ("versions",),
    "outcomes": ("outcomes",),
    "outage": ("outage",),
    "history": ("history",),
    "a redirect": ("redirects", "/assets/images/badge.svg"),
    "a member": ("members", "alpha"),
}


@pytest.mark.parametrize("place", sorted(SHOWN_AT))
def test_the_readmes_complete_file_shows_every_setting_and_no_other(place: str) -> None:
    # A key shown there that no setting has would be refused in a file copied from it.
    shown: Any = yaml.safe_load(readme_block("A complete native file with every default", "yaml"))
    for part in SHOWN_AT[place]:
        shown = shown[part]
    assert set(shown) == set(PLACES[place][1].model_fields)


def test_the_readmes_legacy_example_of_the_new_keys_loads() -> None:
    doc = json.loads(readme_block("In a legacy file these keys go in the same places", "json"))
    config = check_config(doc, "README.md").config
    assert config.members["gesis"].metrics is False
    assert config.members["ovh"].metrics == "https://ovh.mybinder.org/metrics"
    assert config.versions.compatible == {"binderhub": "minor"}
    assert (config.outcomes.max_failure_ratio, config.outcomes.min_launches) == (0.5, 20)
