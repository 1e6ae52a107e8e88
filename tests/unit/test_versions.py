"""Compatible versions during a rollout: the version strings members report, the
``versions.compatible`` levels, and what they change in the view, /why and /status."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from fedredirect.status import render_status
from router.pages import render_status_page
from shared.config import Compatibility
from shared.evaluate import evaluate
from shared.explain import explain
from shared.payloads import parse_versions
from shared.reference import compatible_versions, reference_version, version_differences
from shared.status import status_document, view_to_json
from shared.versions import Version, compatible, parse_version
from tests.support.builders import NOW, make_config, make_obs
from tests.support.dom import Dom
from tests.support.views import member_of, run, states

ROOT = Path(__file__).resolve().parents[2]
LEVELS: tuple[Compatibility, ...] = get_args(Compatibility)
R2D = "quay.io/jupyterhub/repo2docker"

# --- the parser ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.0.0-0.dev.git.3650.h9cb2f5b", Version("", 1, 0, 0, "-0.dev.git.3650.h9cb2f5b")),
        ("0.2.0-n634.h5f6e9e0", Version("", 0, 2, 0, "-n634.h5f6e9e0")),
        ("1.0.1", Version("", 1, 0, 1, "")),
        ("v1.2.3", Version("", 1, 2, 3, "")),
        ("1.2.3+build.7", Version("", 1, 2, 3, "+build.7")),
        ("10.20.30-rc_1", Version("", 10, 20, 30, "-rc_1")),
        (f"{R2D}:2024.07.0", Version(R2D, 2024, 7, 0, "")),
        ("jupyter/repo2docker:2022.10.0", Version("jupyter/repo2docker", 2022, 10, 0, "")),
        (f"{R2D}:2024.07.0-145.g2a8ae5d", Version(R2D, 2024, 7, 0, "-145.g2a8ae5d")),
        ("localhost:5000/r2d:v1.2.3", Version("localhost:5000/r2d", 1, 2, 3, "")),
        ("999999999999999999.0.0", Version("", 999999999999999999, 0, 0, "")),
    ],
)
def test_the_version_strings_members_report_parse(text: str, parsed: Version) -> None:
    assert parse_version(text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.0",
        "1",
        "1.0.0.0",
        "1.0.0-",
        "1.0.0 ",
        " 1.0.0",
        "1.0.0\n",
        "x1.0.0",
        "V1.0.0",
        "1.0.0-dev build",
        "1..0",
        "latest",
        "null",  # a JSON null in /versions, as parse_versions keeps it
        "r2d:latest",
        ":1.0.0",
        "localhost:5000/r2d",
        "r2d@sha256:0123abcd",
        f"{R2D}:2024.07.0@sha256:0123abcd",
        "\u0661.\u0660.\u0660",  # Arabic-Indic digits: digits, but not ASCII ones
        "1" * 19 + ".0.0",  # longer than any release, and far below int()'s limit of 4,300
        "1" * 5000 + ".0.0",
    ],
)
def test_anything_else_does_not_parse(text: str) -> None:
    assert parse_version(text) is None


def test_every_version_in_the_binderhub_fixtures_parses() -> None:
    values = set()
    for path in sorted((ROOT / "tests/fixtures/binderhub").glob("versions*.json")):
        values |= set(parse_versions(200, path.read_bytes()).values())
    assert {v for v in values if parse_version(v) is None} == set()
    assert "1.0.0-0.dev.git.3520.h1234abcd" in values and f"{R2D}:2024.07.0" in values


# --- the levels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "reference", "allowed"),
    [
        ("1.0.1", "1.0.0", {"minor", "patch"}),
        ("1.0.0", "1.0.1", {"minor", "patch"}),
        ("1.1.0", "1.0.0", {"minor"}),
        ("1.0.0", "1.9.9", {"minor"}),
        ("2.0.0", "1.0.0", set()),
        ("0.9.0", "1.0.0", set()),
        ("0.3.0", "0.2.0", {"minor"}),  # major version 0 is not special
        # a dev build counts as the release it leads to, whatever the levels say of its suffix
        ("1.0.0-0.dev.git.3650.h9cb2f5b", "1.0.0", {"minor", "patch"}),
        ("1.0.0-0.dev.git.3650.h9cb2f5b", "1.0.0-0.dev.git.3520.h1234abcd", {"minor", "patch"}),
        ("1.1.0-0.dev.git.12.habcdef0", "1.0.0", {"minor"}),
        ("0.2.0-n634.h5f6e9e0", "0.2.1", {"minor", "patch"}),
        ("v1.0.1", "1.0.0", {"minor", "patch"}),
        ("2024.7.0", "2024.07.0", {"minor", "patch"}),
        (f"{R2D}:2024.07.1", f"{R2D}:2024.07.0", {"minor", "patch"}),
        (f"{R2D}:2024.08.0", f"{R2D}:2024.07.0", {"minor"}),
        (f"{R2D}:2025.01.0", f"{R2D}:2024.07.0", set()),
        # image tags compare only when the images are the same
        ("jupyter/repo2docker:2024.07.0", f"{R2D}:2024.07.0", set()),
        ("2024.07.0", f"{R2D}:2024.07.0", set()),
        # what does not parse compares exactly
        ("1.0.0 ", "1.0.0", set()),
        ("1.0", "1.0.0", set()),
        ("latest", "1.0.0", set()),
        ("1.0.0", "latest", set()),
    ],
)
def test_which_levels_allow_a_difference(version: str, reference: str, allowed: set[str]) -> None:
    assert {level for level in LEVELS if compatible(version, reference, level)} == allowed
    assert compatible(reference, version, "exact") is False


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("text", ["1.0.0", "latest", "", f"{R2D}:2024.07.0"])
def test_a_version_is_compatible_with_itself(text: str, level: Compatibility) -> None:
    assert compatible(text, text, level)


# --- properties over generated version strings -----------------------------------------------

NUMBERS = st.integers(0, 3) | st.integers(0, 10**17 - 1)  # 18 digits with a leading zero
SUFFIXES = st.sampled_from(["", "-0.dev.git.3650.h9cb2f5b", "-n634.h5f6e9e0", "+b.1", "-rc.1"])
IMAGES = st.sampled_from(["", R2D, "jupyter/repo2docker", "localhost:5000/r2d"])


@st.composite
def version_parts(draw: st.DrawFn) -> tuple[str, Version]:
    """A version string as members report it, with what it says (leading zeros included)."""
    image, suffix = draw(IMAGES), draw(SUFFIXES)
    major, minor, patch = draw(NUMBERS), draw(NUMBERS), draw(NUMBERS)
    numbers = ".".join(draw(st.sampled_from(["", "0"])) + str(n) for n in (major, minor, patch))
    text = draw(st.sampled_from(["", "v"])) + numbers + suffix
    return (f"{image}:{text}" if image else text), Version(image, major, minor, patch, suffix)


VERSIONS = version_parts().map(lambda parts: parts[0]) | st.text(max_size=30)
LEVEL = st.sampled_from(LEVELS)


@given(version_parts())
def test_a_generated_version_parses_to_its_parts(parts: tuple[str, Version]) -> None:
    text, version = parts
    assert parse_version(text) == version


@given(VERSIONS, LEVEL)
def test_compatibility_is_reflexive(text: str, level: Compatibility) -> None:
    assert compatible(text, text, level)


@given(VERSIONS, VERSIONS, LEVEL)
def test_compatibility_is_symmetric(a: str, b: str, level: Compatibility) -> None:
    assert compatible(a, b, level) == compatible(b, a, level)


@given(VERSIONS, VERSIONS)
def test_exact_is_string_equality(a: str, b: str) -> None:
    assert compatible(a, b, "exact") == (a == b)


@given(VERSIONS, VERSIONS)
@example("1.0.1", "1.0.0")
@example("1.1.0", "1.0.0")
def test_minor_allows_what_patch_allows_which_allows_what_exact_does(a: str, b: str) -> None:
    exact, patch, minor = (compatible(a, b, level) for level in ("exact", "patch", "minor"))
    assert (not exact or patch) and (not patch or minor)


@given(VERSIONS, VERSIONS, LEVEL)
def test_what_does_not_parse_compares_exactly(a: str, b: str, level: Compatibility) -> None:
    if parse_version(a) is None or parse_version(b) is None:
        assert compatible(a, b, level) == (a == b)


@given(version_parts(), version_parts())
def test_parsed_versions_compare_by_image_and_numbers(
    a: tuple[str, Version], b: tuple[str, Version]
) -> None:
    (x, vx), (y, vy) = a, b
    same_major = vx.image == vy.image and vx.major == vy.major
    assert compatible(x, y, "minor") == (x == y or same_major)
    assert compatible(x, y, "patch") == (x == y or (same_major and vx.minor == vy.minor))


# --- the reference's differences -------------------------------------------------------------

REF = {"binderhub": "1.0.0", "builder": f"{R2D}:2024.07.0"}


def pinned(**compatible: Compatibility) -> Any:
    config = make_config(versions={"reference": "pinned", "pinned": REF, "compatible": compatible})
    return reference_version(config, {}, NOW), config.versions.compatible


def test_a_difference_the_level_allows_is_no_difference_but_is_named() -> None:
    ref, levels = pinned(binderhub="minor")
    member = {"binderhub": "1.2.0", "builder": f"{R2D}:2024.07.0"}
    assert version_differences(member, ref, levels) == ()
    assert compatible_versions(member, ref, levels) == ("binderhub",)
    assert version_differences(member, ref) == ("binderhub",)  # without levels: exact


def test_a_key_not_named_compares_exactly() -> None:
    ref, levels = pinned(builder="minor")
    member = {"binderhub": "1.0.1", "builder": f"{R2D}:2024.08.0"}
    assert version_differences(member, ref, levels) == ("binderhub",)
    assert compatible_versions(member, ref, levels) == ("builder",)


def test_equal_or_missing_versions_are_not_called_compatible() -> None:
    ref, levels = pinned(binderhub="minor", builder="patch")
    assert compatible_versions(REF, ref, levels) == ()
    missing = {"binderhub": "1.0.1"}
    assert compatible_versions(missing, ref, levels) == ("binderhub",)
    assert version_differences(missing, ref, levels) == ("builder",)
    assert compatible_versions(None, ref, levels) == ()
    assert version_differences(None, ref, levels) == ("*",)
    # a key the member shares with the reference, or lacks, does not hide the next one
    later = f"{R2D}:2024.07.5"
    assert compatible_versions({"binderhub": "1.0.0", "builder": later}, ref, levels) == (
        "builder",
    )
    assert compatible_versions({"builder": later}, ref, levels) == ("builder",)
    assert version_differences({"builder": later}, ref, levels) == ("binderhub",)


def test_a_key_the_reference_lacks_is_a_difference_whatever_the_level() -> None:
    config = make_config(
        versions={"reference": "pinned", "pinned": {"binderhub": "1.0.0"}, "compatible": {}}
    )
    ref = replace(reference_version(config, {}, NOW), keys=("binderhub", "builder"))
    levels: dict[str, Compatibility] = {"binderhub": "minor", "builder": "minor"}
    member = {"binderhub": "1.0.1", "builder": f"{R2D}:2024.07.0"}
    assert compatible_versions(member, ref, levels) == ("binderhub",)
    assert version_differences(member, ref, levels) == ("builder",)


def test_without_a_reference_nothing_is_compared() -> None:
    config = make_config(versions={"reference": "majority", "compatible": {"binderhub": "minor"}})
    ref = reference_version(config, {}, NOW)
    assert ref.versions is None
    member = {"binderhub": "1.0.1"}
    levels = config.versions.compatible
    assert compatible_versions(member, ref, levels) == ()
    assert version_differences(member, ref, levels) == ()


# --- through evaluate: who receives launches ------------------------------------------------


def rollout(level: Compatibility | None, beta: str, key: str = "binderhub") -> Any:
    """alpha (the prime, the reference) on binderhub 1.0.0, beta on ``beta``, gamma on 1.0.0."""
    compatible = {key: level} if level else {}
    config = make_config(versions={"compatible": compatible})
    builder = {"builder": f"{R2D}:2024.07.0"}
    obs = {
        "alpha": make_obs("alpha", versions={"binderhub": "1.0.0", **builder}),
        "beta": make_obs("beta", versions={"binderhub": beta, **builder}),
        "gamma": make_obs("gamma", versions={"binderhub": "1.0.0", **builder}),
    }
    return run(config, obs)


@pytest.mark.parametrize(
    ("level", "beta", "state"),
    [
        ("minor", "1.0.1", "eligible"),
        ("patch", "1.0.1", "eligible"),
        ("minor", "1.1.0", "eligible"),
        ("patch", "1.1.0", "version_mismatch"),
        ("minor", "2.0.0", "version_mismatch"),
        ("patch", "2.0.0", "version_mismatch"),
        ("exact", "1.0.1", "version_mismatch"),
        (None, "1.0.1", "version_mismatch"),
        ("minor", "1.0.1 (patched)", "version_mismatch"),  # does not parse: compared exactly
        ("minor", "1.0.0-0.dev.git.3650.h9cb2f5b", "eligible"),
    ],
)
def test_a_member_mid_rollout_receives_launches_within_its_level(
    level: Compatibility | None, beta: str, state: str
) -> None:
    view = rollout(level, beta)
    assert states(view) == {"alpha": "eligible", "beta": state, "gamma": "eligible"}
    assert ("beta" in [t.name for t in view.targets]) == (state == "eligible")
    assert view.reference.versions is not None
    assert view.reference.versions["binderhub"] == "1.0.0"  # the reference stays the prime's
    beta_view = member_of(view, "beta")
    assert beta_view.compatible_versions == (("binderhub",) if state == "eligible" else ())
    assert beta_view.version_differences == (() if state == "eligible" else ("binderhub",))


def test_the_level_of_another_key_does_not_admit_a_member() -> None:
    view = rollout("minor", "1.0.1", key="builder")
    assert member_of(view, "beta").state == "version_mismatch"
    assert member_of(view, "beta").compatible_versions == ()


def test_a_compatible_member_keeps_its_other_reasons() -> None:
    config = make_config(versions={"compatible": {"binderhub": "minor"}})
    obs = {
        "alpha": make_obs("alpha", versions={"binderhub": "1.0.0"}),
        "beta": make_obs("beta", versions={"binderhub": "1.3.0"}, status="unhealthy"),
        "gamma": make_obs("gamma", versions={"binderhub": "1.0.0"}),
    }
    beta = member_of(run(config, obs), "beta")
    assert beta.excluded_by == ("unhealthy",)
    assert beta.compatible_versions == ("binderhub",)


# --- shown on /status.json, /why and /status -------------------------------------------------

SCHEMA = json.loads((ROOT / "docs/status.schema.json").read_text(encoding="utf-8"))
COMPATIBLE = {"binderhub": {"version": "1.0.1", "reference": "1.0.0", "compatible": "minor"}}


def test_status_json_says_which_rule_admits_a_member() -> None:
    doc = view_to_json(rollout("minor", "1.0.1"))
    assert doc["members"]["beta"]["compatible_versions"] == COMPATIBLE
    assert doc["members"]["beta"]["version_differences"] == []
    assert doc["members"]["alpha"]["compatible_versions"] == {}
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    doc["members"]["beta"]["compatible_versions"]["binderhub"]["compatible"] = "exact"
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) != []


def test_why_says_a_member_is_in_for_a_compatible_version() -> None:
    answer = explain(rollout("patch", "1.0.1"), "/build/gh/org/repo/HEAD")
    candidates = {c["member"]: c for c in answer["candidates"]}
    beta = candidates["beta"]
    assert beta["in"] is True
    assert beta["why"] == "eligible; binderhub 1.0.1 compatible with the reference (patch)"
    assert beta["compatible_versions"] == {
        "binderhub": {"version": "1.0.1", "reference": "1.0.0", "compatible": "patch"}
    }
    assert candidates["gamma"]["why"] == "eligible"
    assert candidates["gamma"]["compatible_versions"] == {}


def test_why_lists_a_compatible_version_of_an_excluded_member_but_not_as_its_reason() -> None:
    config = make_config(versions={"compatible": {"binderhub": "minor"}})
    obs = {
        "alpha": make_obs("alpha", versions={"binderhub": "1.0.0"}),
        "beta": make_obs("beta", versions={"binderhub": "1.3.0"}, status="unhealthy"),
    }
    beta = next(c for c in explain(run(config, obs), "/")["candidates"] if c["member"] == "beta")
    assert beta["in"] is False
    assert beta["why"] == "check failed: JupyterHub API"
    assert beta["compatible_versions"]["binderhub"]["version"] == "1.3.0"


def test_the_status_page_says_compatible_with_the_reference() -> None:
    router = {
        "view_age_seconds": 0.2,
        "max_view_age_seconds": 5.0,
        "store_error": None,
        "generation": 1,
        "checker_heartbeat_age_seconds": None,
        "reason": None,
    }
    dom = Dom(render_status_page(status_document(rollout("minor", "1.0.1"), router)))
    notes = dom.by_class("compatible")
    assert [(attrs["data-key"], text) for attrs, text in notes] == [
        ("binderhub", "compatible with the reference (minor)")
    ]
    row = dom.by_id("member-beta")
    assert row is not None and "ref 1.0.0" in row[1] and row[0]["data-state"] == "eligible"
    assert dom.by_class("version-diff") == []


def test_the_command_line_says_a_member_is_compatible_not_equal() -> None:
    config = make_config({"a": 10, "b": 10}, "a", versions={"compatible": {"binderhub": "minor"}})
    observations = {
        "a": make_obs("a", versions={"binderhub": "1.0.0"}),
        "b": make_obs("b", versions={"binderhub": "1.2.0"}),
    }
    lines = render_status(evaluate(config, observations, {}, None, NOW)).splitlines()
    row = next(line for line in lines if line.startswith("b "))
    assert "binderhub=1.2.0 (compatible with ref 1.0.0, minor)" in row
    assert "= reference" in next(line for line in lines if line.startswith("a "))
