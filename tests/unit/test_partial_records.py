"""Records with a field missing (a record from an older checker, or cut short) and rules
called on their own: each rule still answers, and answers the safe way."""

from __future__ import annotations

from dataclasses import replace

from shared.observe import settled_versions
from shared.records import MemberObservation
from shared.reference import Reference, fresh_versions, reference_version
from shared.rules import version_mismatch_reason
from tests.support.builders import NOW, V1, V2, make_config, make_obs

# versions without the time they were observed: their age is unknown
UNTIMED = replace(make_obs("alpha", versions=V2), versions_at=None)


def test_versions_without_a_time_are_never_fresh() -> None:
    assert fresh_versions(UNTIMED, NOW, 30.0) is None


def test_a_prime_with_untimed_versions_is_a_stale_reference() -> None:
    ref = reference_version(make_config(), {"alpha": UNTIMED}, NOW)
    assert ref.stale is True
    assert ref.versions is None
    assert ref.stale_reason == "the prime alpha has no observed versions"


def test_a_change_without_settled_versions_counts_the_latest() -> None:
    # a record that knows when its versions changed but not what they were before
    obs = MemberObservation("m", NOW, versions=V2, versions_at=NOW, versions_changed_at=NOW)
    assert settled_versions(obs, NOW, 20.0) == V2


def test_a_stale_reference_gives_no_version_mismatch_reason() -> None:
    stale = Reference("prime", V1, ("binderhub",), "prime alpha", NOW - 99, 99, stale=True)
    assert version_mismatch_reason(("binderhub",), stale) is None
    fresh = replace(stale, stale=False)
    assert version_mismatch_reason(("binderhub",), fresh) == (
        "version differs from the reference (prime alpha) on: binderhub"
    )
    unknown = replace(stale, stale=False, versions=None)
    assert version_mismatch_reason(("binderhub",), unknown) is None
    assert version_mismatch_reason((), fresh) is None
