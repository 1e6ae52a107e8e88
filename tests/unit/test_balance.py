"""Balancing: cache keys, the replaced redirector's rendezvous hash, weighted random picks."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared import balance
from shared.balance import (
    Target,
    cache_key,
    member_hash,
    rendezvous_pick,
    rendezvous_score,
    still_first,
    weighted_random_pick,
)
from tests.support.builders import target
from tests.support.hashing import fake_blake2b


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
        ("/build/gh/org/repo/main/", "/build/gh/org/repo/main"),  # the replaced one's quirk
        ("/build/GH/org/repo/0123abc", "/build/gh/org/repo"),
        ("/build/gh/org/repo", "/build/gh/org"),  # as the replaced redirector: last segment
        ("/build/gh/org/repo/", "/build/gh/org/repo"),
        ("/build/gh/org", "/build/gh"),
        ("/build/gh/org/repo/main?x=1", "/build/gh/org/repo"),
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
        ("/build/zenodo/10.5281/zenodo.1/", "/build/zenodo/10.5281/zenodo.1/"),
        ("/", "/"),
        ("", ""),
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
    assert cache_key(f"{base}/{ref1}") == cache_key(f"{base}/{ref2}") == base.lower()


@settings(max_examples=200, deadline=None)
@given(a=segments, b=segments)
def test_different_repositories_get_different_keys(a: str, b: str) -> None:
    assume(a.lower() != b.lower())
    assert cache_key(f"/build/gh/org/{a}/HEAD") != cache_key(f"/build/gh/org/{b}/HEAD")


# --- the replaced redirector's hash and score ------------------------------------------------


def _h(key: str, name: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}-{name}".encode(), digest_size=8).digest(), "big")


def legacy_score(key: str, name: str, weight: float) -> float:
    """The issue's formula, transcribed directly (undefined at h == 0 and h == 2**64 - 1)."""
    return weight / -math.log(_h(key, name) / (2**64 - 1))


def legacy_pick(key: str, buckets: list[tuple[str, float]]) -> str:
    """The replaced redirector's choice: the first of its descending (score, name) ranking,
    over the buckets with a weight above 0."""
    ranking = sorted(
        ((weight * (1.0 / -math.log(_h(key, name) / (2**64 - 1))), name))
        for name, weight in buckets
        if weight > 0
    )
    return ranking[-1][1]


def test_member_hash_is_blake2b_of_key_dash_member() -> None:
    digest = hashlib.blake2b(b"/build/gh/org/repo-alpha", digest_size=8).digest()
    assert member_hash("/build/gh/org/repo", "alpha") == int.from_bytes(digest, "big")


names = st.text(
    st.characters(categories=["L", "N"]) | st.sampled_from("-_."), min_size=1, max_size=10
)
weights = st.floats(min_value=0.001, max_value=1000, allow_nan=False, allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(key=st.text(max_size=40), name=names, weight=weights)
def test_score_is_the_formula(key: str, name: str, weight: float) -> None:
    assert rendezvous_score(key, target(name, weight)) == pytest.approx(
        legacy_score(key, name, weight), rel=1e-12
    )


@settings(max_examples=500, deadline=None)
@given(
    key=st.text(max_size=40),
    buckets=st.dictionaries(names, weights | st.just(0.0), min_size=1, max_size=8),
)
def test_pick_is_the_replaced_redirectors_pick(key: str, buckets: dict[str, float]) -> None:
    assume(any(w > 0 for w in buckets.values()))
    targets = [target(n, w) for n, w in buckets.items()]
    assert pick_name(key, targets) == legacy_pick(key, list(buckets.items()))


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"a": 1.0, "b": 1.0}, {"a": 52, "b": 48}),
        ({"a": 0.8, "b": 0.2}, {"a": 75, "b": 25}),
        ({"a": 0.8, "b": 0.0}, {"a": 100}),
    ],
)
def test_the_replaced_redirectors_own_distributions(
    weights: dict[str, float], expected: dict[str, int]
) -> None:
    """The counts its test suite pins for keys "key-0" ... "key-99"."""
    targets = [target(n, w) for n, w in weights.items()]
    assert Counter(pick_name(f"key-{i}", targets) for i in range(100)) == expected


def test_agreement_with_the_formula_over_many_repositories() -> None:
    members = {"hetzner-2i2c": 50.0, "hetzner-gesis": 50.0, "bids-ovh": 50.0, "curvenote": 5.0}
    targets = [target(n, w) for n, w in members.items()]
    paths = [f"/build/gh/org{i % 97}/repo{i}/HEAD" for i in range(20_000)]
    agree = sum(
        pick_name(cache_key(p), targets) == legacy_pick(cache_key(p), list(members.items()))
        for p in paths
    )
    assert agree == len(paths)


def test_a_zero_hash_scores_zero_and_still_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    # -ln(0) is infinite: the formula's score is 0, not an error.
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(b"\x00" * 8))
    assert member_hash("k", "m") == 0
    assert rendezvous_score("k", target("m", 1.0)) == 0.0
    # every score is 0: the tie goes to the greatest name, on every replica
    assert pick_name("k", [target("b", 1), target("c", 1), target("a", 5)]) == "c"


@pytest.mark.parametrize("digest", [b"\xff" * 8, b"\xff" * 7 + b"\xf0"])
def test_a_hash_at_the_top_scores_infinity(monkeypatch: pytest.MonkeyPatch, digest: bytes) -> None:
    # h / (2**64 - 1) is (or rounds to) 1.0, and -ln(1.0) == 0: no division by zero, no NaN.
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(digest))
    score = rendezvous_score("k", target("m", 0.5))
    assert score == math.inf
    assert pick_name("k", [target("a", 1), target("b", 2)]) == "b"


def test_weight_zero_scores_zero_and_is_never_picked() -> None:
    assert rendezvous_score("k", target("m", 0.0)) == 0.0
    assert rendezvous_pick("k", [target("a", 0.0), target("b", 0.0)]) is None
    assert pick_name("k", [target("a", 0.0), target("b", 1e-9)]) == "b"


def test_equal_scores_break_by_the_greatest_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(b"\x80" + b"\x00" * 7))
    targets = [target("gamma", 3), target("alpha", 3), target("beta", 3)]
    assert pick_name("k", targets) == "gamma"
    assert pick_name("k", list(reversed(targets))) == "gamma"


def test_fake_digest_really_replaces_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    real = member_hash("k", "m")
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(b"\x80" + b"\x00" * 7))
    assert member_hash("k", "m") == 2**63
    monkeypatch.undo()
    assert balance.hashlib.blake2b is hashlib.blake2b
    assert member_hash("k", "m") == real


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


@st.composite
def targets_changed(draw: st.DrawFn) -> tuple[str, list[Target], list[Target], list[Target]]:
    """A key, targets before, the targets that joined, and the targets after: some of those
    before leave (never the key's pick), some join (new names, or a weight changed)."""
    key = draw(st.text(min_size=1, max_size=30))
    weights = st.sampled_from([0.0, 1.0, 5.0]) | st.floats(0.01, 100)
    names = draw(st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=10, unique=True))
    before = [target(n, draw(weights)) for n in names]
    first = rendezvous_pick(key, before)
    assume(first is not None)
    assert first is not None
    stay = [t for t in before if t == first or draw(st.booleans())]
    fresh = draw(st.lists(st.sampled_from("klmnop"), max_size=6, unique=True))
    joined = [target(n, draw(weights)) for n in fresh]
    reweighed = [t for t in stay if t != first and draw(st.booleans())]
    joined += [target(t.name, t.weight + draw(st.floats(0.01, 10))) for t in reweighed]
    after = [t for t in stay if t not in reweighed] + joined
    return key, before, joined, after


@settings(max_examples=500, deadline=None)
@given(targets_changed())
def test_a_keys_pick_stays_exactly_when_no_target_that_joined_ranks_above_it(
    case: tuple[str, list[Target], list[Target], list[Target]],
) -> None:
    key, before, joined, after = case
    first = rendezvous_pick(key, before)
    assert first is not None
    assert still_first(key, first, joined) == (rendezvous_pick(key, after) == first)


def test_a_target_joining_takes_only_the_keys_it_ranks_first_in() -> None:
    before = [target(n, 1.0) for n in ("alpha", "beta")]
    joined = [target("gamma", 1.0)]
    moved = [k for k in KEYS[:3000] if not still_first(k, rendezvous_pick(k, before), joined)]
    assert all(pick_name(k, before + joined) == "gamma" for k in moved)
    assert 0.28 < len(moved) / 3000 < 0.39  # about a third: gamma's share of the weight
