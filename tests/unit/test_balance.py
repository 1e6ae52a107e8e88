"""Balancing: cache keys, the unit hash, weighted rendezvous and weighted random picks."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared import balance
from shared.balance import (
    Target,
    cache_key,
    rendezvous_pick,
    rendezvous_score,
    unit_hash,
    weighted_random_pick,
)


def target(name: str, weight: float) -> Target:
    return Target(name, f"https://{name}.example.org", weight)


def pick_name(key: str, targets: list[Target]) -> str | None:
    chosen = rendezvous_pick(key, targets)
    return None if chosen is None else chosen.name


def random_name(u: float, targets: list[Target]) -> str | None:
    chosen = weighted_random_pick(u, targets)
    return None if chosen is None else chosen.name


def shares(counts: Counter[str | None], total: int) -> dict[str | None, float]:
    return {name: count / total for name, count in counts.items()}


KEYS = [f"/build/gh/org{i % 97}/repo{i}" for i in range(20_000)]


# --- cache_key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/build/gh/Org/Repo/HEAD", "/build/gh/org/repo"),
        ("/build/gh/org/repo/main", "/build/gh/org/repo"),
        ("/build/gh/org/repo/main/", "/build/gh/org/repo"),
        ("/build/GH/org/repo/0123abc", "/build/gh/org/repo"),
        ("/build/gh/org/repo", "/build/gh/org/repo"),
        ("/build/gh/org/repo/", "/build/gh/org/repo"),
        ("/build/gh/org", "/build/gh/org"),
        ("/build/gl/Group%2FRepo/main", "/build/gl/group%2frepo"),
        ("/build/gl/group%2Frepo", "/build/gl/group%2frepo"),
        ("/build/gist/User/abc123/master", "/build/gist/user/abc123"),
        ("/build/gist/user/abc123", "/build/gist/user/abc123"),
        (
            "/build/git/https%3A%2F%2Fexample.org%2Frepo/main",
            "/build/git/https%3a%2f%2fexample.org%2frepo",
        ),
        (
            "/build/git/https%3A%2F%2Fexample.org%2Frepo",
            "/build/git/https%3a%2f%2fexample.org%2frepo",
        ),
        ("/build/zenodo/10.5281/zenodo.3242074", "/build/zenodo/10.5281/zenodo.3242074"),
        ("/build/doi/10.5281/Zenodo.1", "/build/doi/10.5281/zenodo.1"),
        ("/v2/gh/Org/Repo/HEAD", "/v2/gh/org/repo/head"),
        ("/Health", "/health"),
        ("/", "/"),
        ("", "/"),
    ],
)
def test_cache_key(path: str, key: str) -> None:
    assert cache_key(path) == key


segments = st.text(
    st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1, max_size=12
)


@settings(max_examples=200, deadline=None)
@given(
    provider=st.sampled_from(["gh", "gist", "GH"]),
    org=segments,
    repo=segments,
    ref1=segments,
    ref2=segments,
)
def test_every_ref_of_a_repository_shares_one_key(
    provider: str, org: str, repo: str, ref1: str, ref2: str
) -> None:
    base = f"/build/{provider}/{org}/{repo}"
    assert cache_key(f"{base}/{ref1}") == cache_key(f"{base}/{ref2}") == cache_key(base)
    assert cache_key(f"{base}/{ref1}") == base.lower()


@settings(max_examples=200, deadline=None)
@given(a=segments, b=segments)
def test_different_repositories_get_different_keys(a: str, b: str) -> None:
    assume(a.lower() != b.lower())
    assert cache_key(f"/build/gh/org/{a}/HEAD") != cache_key(f"/build/gh/org/{b}/HEAD")


# --- unit_hash --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(key=st.text(), member=st.text())
def test_unit_hash_is_in_the_open_unit_interval(key: str, member: str) -> None:
    h = unit_hash(key, member)
    assert 0.0 < h < 1.0
    assert unit_hash(key, member) == h


def test_unit_hash_depends_on_key_and_member() -> None:
    values = {unit_hash(f"k{i}", m) for i in range(100) for m in ("a", "b")}
    assert len(values) == 200


def fake_blake2b(digest: bytes) -> Any:
    class Fake:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def digest(self) -> bytes:
            return digest

    return Fake


def test_unit_hash_extremes_of_a_zero_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(b"\x00" * 8))
    assert 0.0 < unit_hash("k", "m") < 1e-15


def test_unit_hash_of_an_all_ones_digest_stays_below_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: with 53 bits, (2**53 - 1) + 0.5 rounded up to 2**53, so h was 1.0 and
    # rendezvous_score divided by -log(1.0) == 0.
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(b"\xff" * 8))
    assert unit_hash("k", "m") < 1.0
    assert rendezvous_score("k", target("m", 1.0)) > 0


def test_fake_digest_really_replaces_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    real = unit_hash("k", "m")
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(b"\x80" + b"\x00" * 7))
    assert unit_hash("k", "m") == pytest.approx(0.5)
    assert unit_hash("k", "m") != real
    monkeypatch.undo()
    assert balance.hashlib.blake2b is hashlib.blake2b
    assert unit_hash("k", "m") == real


# --- rendezvous -------------------------------------------------------------------------------


def test_rendezvous_is_deterministic_and_order_independent() -> None:
    targets = [target("alpha", 50), target("beta", 50), target("gamma", 30)]
    first = [rendezvous_pick(k, targets) for k in KEYS[:2000]]
    again = [rendezvous_pick(k, list(reversed(targets))) for k in KEYS[:2000]]
    assert first == again
    assert {t.name for t in first if t} == {"alpha", "beta", "gamma"}


def test_rendezvous_shares_converge_to_the_weights() -> None:
    targets = [target("alpha", 50), target("beta", 50), target("gamma", 30)]
    counts = Counter(pick_name(k, targets) for k in KEYS)
    got = shares(counts, len(KEYS))
    for t in targets:
        assert abs(got[t.name] - t.weight / 130) < 0.02, got


def test_rendezvous_shares_converge_for_skewed_weights() -> None:
    targets = [target("big", 90), target("small", 10)]
    counts = Counter(pick_name(k, targets) for k in KEYS)
    assert abs(counts["small"] / len(KEYS) - 0.10) < 0.02


def test_rendezvous_never_picks_weight_zero() -> None:
    targets = [target("zero", 0), target("one", 1), target("nil", 0.0)]
    assert {pick_name(k, targets) for k in KEYS[:2000]} == {"one"}
    assert rendezvous_pick("k", [target("zero", 0)]) is None
    assert rendezvous_pick("k", []) is None


member_sets = st.dictionaries(
    st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6),
    st.integers(1, 100),
    min_size=2,
    max_size=6,
)
key_lists = st.lists(st.text(max_size=30), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(members=member_sets, keys=key_lists, data=st.data())
def test_removing_a_member_moves_only_its_keys(
    members: dict[str, int], keys: list[str], data: st.DataObject
) -> None:
    targets = [target(n, w) for n, w in members.items()]
    gone = data.draw(st.sampled_from(sorted(members)))
    remaining = [t for t in targets if t.name != gone]
    for key in keys:
        before = rendezvous_pick(key, targets)
        after = rendezvous_pick(key, remaining)
        assert before is not None and after is not None
        if before.name != gone:
            assert after == before


@settings(max_examples=200, deadline=None)
@given(members=member_sets, keys=key_lists, data=st.data())
def test_adding_a_member_only_moves_keys_to_it(
    members: dict[str, int], keys: list[str], data: st.DataObject
) -> None:
    targets = [target(n, w) for n, w in members.items()]
    new = target("new-" + data.draw(st.text(max_size=4)), data.draw(st.integers(1, 100)))
    for key in keys:
        before = rendezvous_pick(key, targets)
        after = rendezvous_pick(key, [*targets, new])
        assert after in (before, new)


@settings(max_examples=100, deadline=None)
@given(members=member_sets, keys=key_lists)
def test_lowering_a_weight_only_moves_keys_away_from_it(
    members: dict[str, int], keys: list[str]
) -> None:
    targets = [target(n, w) for n, w in members.items()]
    lowered_name = sorted(members)[0]
    lowered = [target(t.name, t.weight / 2) if t.name == lowered_name else t for t in targets]
    for key in keys:
        before = rendezvous_pick(key, targets)
        after = rendezvous_pick(key, lowered)
        assert before is not None and after is not None
        if before.name != lowered_name:
            assert after.name == before.name


# --- weighted random --------------------------------------------------------------------------


def test_weighted_random_with_uniform_u_converges_to_the_weights() -> None:
    targets = [target("alpha", 50), target("zero", 0), target("beta", 50), target("gamma", 30)]
    n = 13_000
    counts = Counter(random_name((i + 0.5) / n, targets) for i in range(n))
    got = shares(counts, n)
    assert "zero" not in got
    for t in (t for t in targets if t.weight > 0):
        assert abs(got[t.name] - t.weight / 130) < 0.005, got


def test_weighted_random_boundaries() -> None:
    targets = [target("a", 1), target("b", 3)]
    assert random_name(0.0, targets) == "a"
    assert random_name(0.2499, targets) == "a"
    assert random_name(0.25, targets) == "b"
    assert random_name(0.9999999999999999, targets) == "b"
    assert random_name(1.0, targets) == "b"
    assert weighted_random_pick(0.5, []) is None
    assert weighted_random_pick(0.5, [target("z", 0)]) is None


@settings(max_examples=300, deadline=None)
@given(
    weights=st.lists(st.sampled_from([0, 0.0, 1, 2.5, 30, 50]), min_size=1, max_size=6),
    u=st.floats(0, 1, exclude_max=True),
)
def test_weighted_random_never_picks_weight_zero(weights: list[float], u: float) -> None:
    targets = [target(f"m{i}", w) for i, w in enumerate(weights)]
    chosen = weighted_random_pick(u, targets)
    if all(w == 0 for w in weights):
        assert chosen is None
    else:
        assert chosen is not None
        assert chosen.weight > 0
