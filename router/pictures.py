"""The status page's pictures of the recent past: a ``shared.timeline.timeline`` document
drawn as inline SVG strips (the reference, the version gate, each member), time on x, and
each router's share of launches per member.

Every value from the document goes through :func:`html.escape`, as on the rest of the page
(router.pages).
"""

from __future__ import annotations

import html
import itertools
import time
from collections.abc import Mapping
from typing import Any

from shared.timeline import NO_HISTORY, WINDOWS, clock

#: A strip's width in SVG units (the SVG scales to the page): x is proportional to time.
STRIP_WIDTH = 1000
#: A segment narrower than this (in the same units) is also drawn this wide, on top.
BLIP_WIDTH = 3


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _x(at: float, start: float, end: float) -> float:
    """A time's x in a strip: ``STRIP_WIDTH`` units across the window."""
    return round((at - start) / (end - start) * STRIP_WIDTH, 3)


def _span(seg: Mapping[str, Any]) -> str:
    return f"{clock(seg['start'])} to {clock(seg['end'])}"


def _strip(ident: str, label: str, pictures: Mapping[str, Any], segs: list[Any], marks: str) -> str:
    """One strip: a rect per segment (its state and reason in a <title>), then a "blip"
    over each segment too narrow to see, then the marks."""
    start, end = pictures["start"], pictures["end"]
    rects, blips = [], []
    for seg in segs:
        x, x_end = _x(seg["start"], start, end), _x(seg["end"], start, end)
        title = (
            f"<title>{_e(label)}: {_e(seg['state'])}, {_e(_span(seg))}: {_e(seg['reason'])}</title>"
        )
        rects.append(
            f'<rect class="seg seg-{_e(seg["state"])}" data-state="{_e(seg["state"])}" '
            f'data-start="{seg["start"]}" data-end="{seg["end"]}" '
            f'x="{x}" y="0" width="{x_end - x:.3f}" height="20">{title}</rect>'
        )
        if x_end - x < BLIP_WIDTH:  # a minute of 7 days: drawn at a visible width on top
            left = min(max(x - (BLIP_WIDTH - (x_end - x)) / 2, 0), STRIP_WIDTH - BLIP_WIDTH)
            blips.append(
                f'<rect class="blip seg-{_e(seg["state"])}" data-at="{seg["start"]}" '
                f'x="{left:.3f}" y="0" width="{BLIP_WIDTH}" height="20">{title}</rect>'
            )
    return (
        f'<div class="strip" id="{_e(ident)}"><span class="label" title="{_e(label)}">'
        f"{_e(label)}</span>"
        f'<svg viewBox="0 0 {STRIP_WIDTH} 20" preserveAspectRatio="none" role="img" '
        f'aria-label="{_e(label)} over the window">{"".join(rects + blips)}{marks}</svg></div>'
    )


def _mark(css: str, at: float, pictures: Mapping[str, Any], title: str) -> str:
    x = max(_x(at, pictures["start"], pictures["end"]) - 1, 0)
    return (
        f'<rect class="{css}" data-at="{at}" x="{x}" y="0" width="2" height="20">'
        f"<title>{_e(title)}</title></rect>"
    )


def _axis(pictures: Mapping[str, Any]) -> str:
    start, end = pictures["start"], pictures["end"]
    fmt = "%a %H:%M" if end - start > 86400 else "%H:%M"
    ticks = []
    for i in range(7):
        at = start + (end - start) * i / 6
        css = "first" if i == 0 else "last" if i == 6 else ""
        label = time.strftime(fmt, time.gmtime(at))
        ticks.append(f'<span class="{css}" style="left:{100 * i / 6:.4f}%">{label}</span>')
    return f'<div class="axis">{"".join(ticks)}</div>'


_LEGEND = ("eligible", "full", "version_mismatch", "drained", "failing", "unhealthy", NO_HISTORY)


def _shares_chart(pictures: Mapping[str, Any], members: list[str]) -> str:
    """Per router, one bar: the share of its launches in the window each member received."""
    bars = []
    shown: dict[str, int] = {}  # member: hue, for the legend
    for router, counts in pictures["launches"].items():
        total = sum(counts.values())
        x = 0.0
        rects = []
        for name in [*members, *sorted(set(counts) - set(members))]:
            count = counts.get(name, 0)
            if not count:
                continue
            width = STRIP_WIDTH * count / total
            hue = (members.index(name) if name in members else len(members)) * 137 % 360
            shown[name] = hue
            rects.append(
                f'<rect class="share" data-member="{_e(name)}" data-count="{count}" '
                f'x="{x:.3f}" y="0" width="{width:.3f}" height="20" '
                f'style="fill:hsl({hue},55%,55%)"><title>{_e(name)}: {count} launches '
                f"({100 * count / total:.0f}%)</title></rect>"
            )
            x += width
        bars.append(
            f'<div class="bar" data-router="{_e(router)}"><span class="label muted" '
            f'title="{_e(router)}">{_e(router)} ({total})</span>'
            f'<svg viewBox="0 0 {STRIP_WIDTH} 20" preserveAspectRatio="none" role="img" '
            f'aria-label="launches by member">{"".join(rects)}</svg></div>'
        )
    if not bars:
        return '<p class="muted">No launches recorded by any router in this window.</p>'
    legend = "".join(
        f'<span><i style="background:hsl({hue},55%,55%)"></i>{_e(name)}</span>'
        for name, hue in shown.items()
    )
    return (
        "<h3>Share of launches per router</h3>"
        + "".join(bars)
        + f'<div class="legend">{legend}</div>'
    )


def render_pictures(pictures: Mapping[str, Any] | None) -> str:
    """The strips for the window, or a note saying why there are none."""
    if pictures is None:
        return ""
    window = pictures["window"]
    links = " ".join(
        f'<a href="?window={w}"{" aria-current=page" if w == window else ""}>{w}</a>'
        for w in WINDOWS
    )
    head = f'<h2>The last {_e(window)}</h2><nav class="windows">window: {links}</nav>'
    if pictures.get("error"):
        note = f"History cannot be shown now ({pictures['error']}); the table shows the present."
        return head + f'<p class="banner" id="history-error">{_e(note)}</p>'
    since = pictures["available_since"]
    note = (
        "No history is recorded yet."
        if since is None
        else f"History available since {clock(since)}."
    )
    ref_marks = "".join(
        _mark("mark ref-change", seg["start"], pictures, f"reference changed: {seg['reason']}")
        for before, seg in itertools.pairwise(pictures["reference"])
        if before["state"] != NO_HISTORY  # a change, not where history starts
    )
    strips = [
        _strip("strip-reference", "reference", pictures, pictures["reference"], ref_marks),
        _strip("strip-gate", "version gate", pictures, pictures["gate"], ""),
    ]
    members = list(pictures["members"])
    for name, member in pictures["members"].items():
        marks = "".join(
            _mark(
                "drain-mark",
                d["at"],
                pictures,
                f"{d['event']}ed by an operator at {clock(d['at'])}"
                + (f": {d['reason']}" if d["reason"] else ""),
            )
            for d in member["drains"]
        )
        strips.append(_strip(f"strip-{name}", name, pictures, member["segments"], marks))
    legend = "".join(
        f'<span><svg width="12" height="12"><rect class="seg-{s}" width="12" height="12"/></svg>'
        f" {s.replace('_', ' ')}</span>"
        for s in _LEGEND
    )
    return (
        f"{head}<p class=muted>{_e(note)} Hover a segment for its state and reason.</p>"
        f'<div class="timeline" data-start="{pictures["start"]}" data-end="{pictures["end"]}">'
        f"{''.join(strips)}{_axis(pictures)}</div>"
        f'<div class="legend">{legend}</div>'
        f'<div class="shares">{_shares_chart(pictures, members)}</div>'
    )


#: The patterns the strips fill with, defined once at the top of the page.
SVG_DEFS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="no-history" width="8" height="8" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="8" height="8" fill="#e0e0e0"/>'
    '<rect width="3" height="8" fill="#bdbdbd"/></pattern></defs></svg>'
)
