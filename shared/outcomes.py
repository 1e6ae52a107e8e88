"""Judging members by their launch outcomes, as their own /metrics count them.

BinderHub observes each launch attempt in the histogram ``binderhub_launch_time_seconds``
with a ``status`` label (binderhub/builder.py): ``success``, ``failure`` (its last attempt
failed) or ``retry`` (an attempt failed and the launch goes on). Launches are the
successes and failures; a retry is not a launch's end, and quota refusals never reach the
histogram (BinderHub counts them in ``binderhub_launch_count`` only). The checker samples
these cumulative counts once a period; their increase over a sliding window gives each
member's failure ratio, and :func:`judge` ejects a member failing too many launches for a
time that grows with its ejections in a row, as Envoy's outlier detection does. See
docs/outcomes.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from shared.config import FederationConfig, OutcomesConfig
from shared.records import LaunchOutcomes

#: The ``_count`` samples of BinderHub's launch histogram, one per (status, retries).
LAUNCH_COUNT_SAMPLE = "binderhub_launch_time_seconds_count"
#: The ``status`` values that end a launch; the failure is the second.
ENDING_STATUSES = ("success", "failure")


class LaunchTotals(NamedTuple):
    """A member's cumulative launch counts since it started (its counters' values)."""

    launches: int  # launches that ended: succeeded or failed
    failures: int

    @property
    def successes(self) -> int:
        return self.launches - self.failures


def launch_totals(text: str) -> LaunchTotals:
    """The launch counts in a member's /metrics text, summed over the other labels; 0/0
    while it has no launch counted (BinderHub shows a labelled series only once used).
    Text that does not parse, or a count that is no count, raises ValueError."""
    try:
        samples = [
            sample
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == LAUNCH_COUNT_SAMPLE
        ]
    except ValueError as exc:
        raise ValueError(f"not in Prometheus's text format ({exc})") from None
    counts = dict.fromkeys(ENDING_STATUSES, 0)
    for sample in samples:
        status = sample.labels.get("status")
        if status in counts:
            counts[status] += _count(sample.value, status)
    return LaunchTotals(counts["success"] + counts["failure"], counts["failure"])


def _count(value: float, status: str) -> int:
    # The parser gives an int for "12" and a float for "12.0" or "NaN".
    if not (math.isfinite(value) and value >= 0 and float(value).is_integer()):
        raise ValueError(f"{LAUNCH_COUNT_SAMPLE} of status {status!r} is {value:g}, not a count")
    return int(value)


# --- the sliding window ---------------------------------------------------------------------


class Sample(NamedTuple):
    """A member's launch totals as read at one instant."""

    at: float
    totals: LaunchTotals


class WindowCounts(NamedTuple):
    """The launches and failures counted between a window's first and last samples."""

    launches: int
    failures: int
    span: float  # seconds from the first sample to the last
    observed_at: float  # the last sample's

    @property
    def failure_ratio(self) -> float | None:
        return self.failures / self.launches if self.launches else None


def slide(samples: Sequence[Sample], sample: Sample, window: float) -> tuple[Sample, ...]:
    """The samples worth keeping after ``sample``: those at most ``window`` seconds older,
    oldest first. A sample later than the new one (a clock gone back) is dropped too."""
    start = sample.at - window
    return (*(s for s in samples if start <= s.at <= sample.at), sample)


def increase(before: LaunchTotals, after: LaunchTotals) -> LaunchTotals:
    """What was counted from ``before`` to ``after``; all of ``after`` when a count went
    down: the member restarted and counted again from 0, as Prometheus's increase() reads
    a counter reset."""
    if after.failures < before.failures or after.successes < before.successes:
        return after
    return LaunchTotals(after.launches - before.launches, after.failures - before.failures)


def window_counts(samples: Iterable[Sample], start: float) -> WindowCounts | None:
    """The increase over the samples taken at ``start`` or later (oldest first); None when
    there is none. One sample spans nothing: 0 launches."""
    kept = [s for s in samples if s.at >= start]
    if not kept:
        return None
    launches = failures = 0
    for before, after in pairwise(kept):
        step = increase(before.totals, after.totals)
        launches += step.launches
        failures += step.failures
    return WindowCounts(launches, failures, kept[-1].at - kept[0].at, kept[-1].at)


def counting_start(config: FederationConfig, previous: LaunchOutcomes | None, now: float) -> float:
    """Where a member's window starts: ``outcomes.window`` seconds ago, or the end of its
    last ejection when that is later and past, so the failures that ejected it are never
    counted again. During an ejection the whole window counts (for /status and metrics)."""
    start = now - config.outcomes_window
    until = previous.ejected_until if previous else None
    return max(start, until) if until is not None and until <= now else start


# --- the judgement --------------------------------------------------------------------------


class Reading(NamedTuple):
    """What the checker made of a member's metrics: the window's counts (None: no sample
    in it) and why the latest read failed, if it did."""

    counts: WindowCounts | None
    error: str | None = None


def is_ejected(outcomes: LaunchOutcomes | None, now: float) -> bool:
    """Ejected at ``now``, as shared.evaluate.failing_reason judges it."""
    if outcomes is None or outcomes.ejected_until is None:
        return False
    return now < outcomes.ejected_until


def qualifies(settings: OutcomesConfig, counts: WindowCounts | None) -> bool:
    """Failing enough launches to be ejected: a ratio above ``max_failure_ratio`` over at
    least ``min_launches`` launches."""
    if counts is None or counts.launches < settings.min_launches:
        return False
    return counts.failures / counts.launches > settings.max_failure_ratio


def ejection_cap(settings: OutcomesConfig, members: int) -> int:
    """How many of ``members`` may be ejected at once: ``max_ejected_share`` of them, at
    least one (as Envoy), never all (so none of one)."""
    if members < 2:
        return 0
    # The share as written: 0.29 of 100 members is 29, where the binary 0.29 gives 28.99...
    share = math.floor(Fraction(str(settings.max_ejected_share)) * members)
    return min(members - 1, max(1, share))


def ejection_time(settings: OutcomesConfig, ejections: int) -> float:
    """How long the ``ejections``-th ejection in a row lasts: ``base_ejection`` times
    ``ejections``, at most ``max_ejection``."""
    return min(settings.base_ejection * ejections, settings.max_ejection)


def ejections_in_a_row(
    settings: OutcomesConfig, previous: LaunchOutcomes | None, now: float
) -> int:
    """The ejections a new one would follow: back to 0 once ``max_ejection`` has passed
    since the last one ended without another."""
    if previous is None or previous.ejected_until is None:
        return 0
    if now >= previous.ejected_until + settings.max_ejection:
        return 0
    return previous.ejections


def ejection_reason(
    settings: OutcomesConfig, counts: WindowCounts, duration: float, ejections: int
) -> str:
    """The numbers that ejected a member, fixed when it is ejected (no age that moves)."""
    ratio = counts.failures / counts.launches
    return (
        f"launches failing: {counts.failures} of {counts.launches} failed in the last "
        f"{counts.span:.3g}s ({_percent(ratio)} > {_percent(settings.max_failure_ratio)}); "
        f"ejected for {duration:g}s, ejection {ejections} in a row"
    )


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.3g}%"


def judge(
    config: FederationConfig,
    previous: Mapping[str, LaunchOutcomes | None],
    readings: Mapping[str, Reading],
    now: float,
) -> dict[str, LaunchOutcomes]:
    """The launch outcomes of every member in ``readings`` at ``now``.

    ``previous`` holds the outcomes last published, of the members read and of every member
    ejected now at least: an ejection runs to its end whatever the readings say, and the
    ejections going on count against :func:`ejection_cap` of the configured members. When
    more members qualify than there is room for, the worst ratios are ejected first (then
    the most launches, then by name)."""
    settings = config.outcomes
    ejected = {name for name, outcomes in previous.items() if is_ejected(outcomes, now)}
    room = ejection_cap(settings, len(config.members)) - len(ejected)
    candidates = [
        (reading.counts, name)
        for name, reading in readings.items()
        if name not in ejected
        and reading.counts is not None
        and qualifies(settings, reading.counts)
    ]
    candidates.sort(key=lambda c: (-c[0].failures / c[0].launches, -c[0].launches, c[1]))
    ejecting = {name for _counts, name in candidates[: max(room, 0)]}
    return {
        name: _next_outcomes(settings, previous.get(name), reading, now, name in ejecting)
        for name, reading in readings.items()
    }


class Judgement(NamedTuple):
    """A read judged: every judged member's outcomes, and the members to judge again at the
    next read of any member (ejected or failing enough: they share the cap)."""

    outcomes: dict[str, LaunchOutcomes]
    contenders: frozenset[str]


def judge_read(
    config: FederationConfig,
    read: tuple[str, str | None],
    samples: Mapping[str, Sequence[Sample]],
    previous: Mapping[str, LaunchOutcomes | None],
    now: float,
) -> Judgement:
    """The checker's step after reading one member's metrics: ``read`` is that member and
    why its read failed (None: it did not); ``previous`` holds the published outcomes of
    every member to judge (the one read and the contenders); ``samples`` each member's
    window. A member not read keeps the error its last read had."""
    name, error = read
    readings = {
        n: Reading(
            window_counts(samples.get(n, ()), counting_start(config, last, now)),
            error if n == name else (last.error if last else None),
        )
        for n, last in previous.items()
    }
    outcomes = judge(config, previous, readings, now)
    contenders = frozenset(
        n
        for n, judged in outcomes.items()
        if is_ejected(judged, now) or qualifies(config.outcomes, readings[n].counts)
    )
    return Judgement(outcomes, contenders)


def _next_outcomes(
    settings: OutcomesConfig,
    previous: LaunchOutcomes | None,
    reading: Reading,
    now: float,
    eject: bool,
) -> LaunchOutcomes:
    counts = reading.counts or WindowCounts(0, 0, 0.0, now)
    streak = ejections_in_a_row(settings, previous, now)
    outcomes = LaunchOutcomes(
        counts.launches,
        counts.failures,
        counts.span,
        counts.observed_at,
        ejected_until=previous.ejected_until if previous else None,
        ejection_reason=previous.ejection_reason if previous else None,
        ejections=streak,
        error=reading.error,
    )
    if not eject:
        return outcomes
    duration = ejection_time(settings, streak + 1)
    return replace(
        outcomes,
        ejected_until=now + duration,
        ejection_reason=ejection_reason(settings, counts, duration, streak + 1),
        ejections=streak + 1,
    )


def carried_on(
    own: LaunchOutcomes | None, published: LaunchOutcomes | None
) -> LaunchOutcomes | None:
    """A checker taking over the writer lease: its own counts, with the ejection the last
    writer published (ongoing or past, with its count in a row), since that is what routers
    have been judging by and what kept the cap. Its own unpublished ejections are dropped:
    the next reading judges those members again."""
    if own is None:
        return None
    if published is None:
        return replace(own, ejected_until=None, ejection_reason=None, ejections=0)
    return replace(
        own,
        ejected_until=published.ejected_until,
        ejection_reason=published.ejection_reason,
        ejections=published.ejections,
    )
