"""Balancing at its edges: where the cache key drops a trailing slash, paths ``repo_path``
leaves alone, a weighted draw that float rounding carries past the last weight, and
weight 0 at the top of the hash range."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared import balance
from shared.balance import Target, cache_key, rendezvous_score, repo_path, weighted_random_pick
from tests.support.hashing import fake_blake2b


@pytest.mark.parametrize(
    ("path", "key"),
    [
        # a ref-dropping provider with a trailing slash: the slash goes, then the ref
        ("/build/gl/Group%2FRepo/main/", "/build/gl/group%2frepo"),
        ("/build/gist/User/abc123/master/", "/build/gist/user/abc123"),
        ("/build/git/https%3A%2F%2Fx.org%2Fr/main/", "/build/git/https%3a%2f%2fx.org%2fr"),
        # the provider alone: the trailing slash goes, as for any path of these providers
        ("/build/gl/", "/build/gl"),
        ("/build/gist/", "/build/gist"),
        ("/build/git/", "/build/git"),
    ],
)
def test_cache_key_of_ref_dropping_providers_ignores_a_trailing_slash(path: str, key: str) -> None:
    assert cache_key(path) == key
    assert cache_key(path.rstrip("/")) == key


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("/build", "/build"),
        ("/build/gl", "/build/gl"),
        ("/v2/gl/group/repo/main", "/v2/gl/group/repo/main"),  # not a launch: unchanged
        ("/build/gh/Org/Repo/HEAD/", "/build/gh/Org/Repo"),  # case kept: cache_key lowers it
    ],
)
def test_repo_path(path: str, expected: str) -> None:
    assert repo_path(path) == expected


segment = st.text(st.characters(blacklist_characters="/", blacklist_categories=["Cs"]), min_size=1)


@settings(max_examples=100, deadline=None)
@given(
    provider=st.sampled_from(["zenodo", "doi", "figshare", "hydroshare", "dataverse", "ckan"]),
    rest=st.lists(segment, min_size=1, max_size=4),
)
@example(provider="zenodo", rest=["10.5281", "ZENODO.X"])  # ends in a letter of "XX/XX"
@example(provider="doi", rest=["10.5281", "record "])  # ends in whitespace
def test_repo_path_keeps_other_providers_whole(provider: str, rest: list[str]) -> None:
    path = "/".join(["", "build", provider, *rest])
    assert repo_path(path) == path
    assert repo_path(path + "/") == path


def test_a_draw_that_rounding_carries_past_every_weight_picks_the_last_weighted_target() -> None:
    # u just below 1: u x 0.6000000000000001 minus 0.1, 0.2 and 0.3 leaves exactly 0.0,
    # so no target takes the draw inside the loop
    u = math.nextafter(1.0, 0.0)
    targets = [Target(n, f"https://{n}.example.org", w) for n, w in
               [("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.0)]]  # fmt: skip
    chosen = weighted_random_pick(u, targets)
    assert chosen is not None
    assert chosen.name == "c"  # never the weight-0 member after it


@pytest.mark.parametrize("digest", [b"\xff" * 8, b"\x00" * 8, b"\x80" + b"\x00" * 7])
def test_weight_zero_scores_zero_wherever_the_hash_falls(
    monkeypatch: pytest.MonkeyPatch, digest: bytes
) -> None:
    monkeypatch.setattr(balance.hashlib, "blake2b", fake_blake2b(digest))
    assert rendezvous_score("k", Target("m", "https://m.example.org", 0.0)) == 0.0
