"""``launch_fails``: a simulated member fails exactly its share of launches, spread evenly,
so tests and the dev stack see the same launches fail every run."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from fedredirect.memberstate import launch_fails

# Shares as they are written in a POST /_sim body or on the command line: decimals.
shares = st.integers(min_value=0, max_value=1000).map(lambda k: k / 1000)


@given(shares, st.integers(min_value=1, max_value=2000))
def test_the_first_launches_hold_exactly_their_share_of_failures(share: float, n: int) -> None:
    failures = sum(launch_fails(share, launch) for launch in range(1, n + 1))
    assert failures == math.floor(n * Fraction(str(share)))


@given(shares, st.integers(min_value=1, max_value=500), st.integers(min_value=1, max_value=500))
def test_failures_are_spread_evenly(share: float, first: int, count: int) -> None:
    """Any run of consecutive launches holds its share of failures, rounded down or up."""
    failures = sum(launch_fails(share, launch) for launch in range(first, first + count))
    expected = count * Fraction(str(share))
    assert math.floor(expected) <= failures <= math.ceil(expected)


def test_the_shares_a_reader_expects() -> None:
    assert [launch_fails(0.5, n) for n in range(1, 7)] == [False, True] * 3
    assert not any(launch_fails(0, n) for n in range(1, 100))
    assert all(launch_fails(1, n) for n in range(1, 100))
    assert [n for n in range(1, 31) if launch_fails(0.1, n)] == [10, 20, 30]
    assert [n for n in range(1, 101) if launch_fails(0.29, n)][-1] == 100  # 29 in 100
