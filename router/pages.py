"""The operator's status page: the ``/status.json`` document rendered as one HTML page.

It is a pure function of that document, so the page and the JSON can never disagree, and
every value from it goes through :func:`html.escape` (member reasons quote remote answers).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from shared.humanize import format_age
from shared.status import banners

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .6em}h2{font-size:1.1em;margin:1.2em 0 .4em}
.banner{padding:.6em 1em;margin:.4em 0;border-radius:4px;border:1px solid #c62828;
background:#ffebee;font-weight:600}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eee}td.num{text-align:right;white-space:nowrap}
td.reasons{min-width:12em}td.versions{min-width:24em}
.versions .key{color:#555;font-size:.9em}.versions div{margin:.1em 0}
.state{padding:.1em .5em;border-radius:3px;font-weight:600;white-space:nowrap}
.state-eligible{background:#c8e6c9}.state-full{background:#ffe0b2}
.state-version_mismatch{background:#fff59d}.state-drained{background:#d1c4e9}
.state-stale,.state-unreachable,.state-unhealthy{background:#ffcdd2}
.version-diff{background:#ffeb3b;outline:2px solid #f57f17;font-weight:600}
.ref{color:#666;font-size:.9em}.prime{color:#b8860b}.muted{color:#777}
code{font-size:.95em;overflow-wrap:break-word}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}
dt{font-weight:600}dd{margin:0}
"""


_MISSING = "-"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | int | None) -> str:
    if value is None:
        return _MISSING
    return f"{value:g}" if isinstance(value, float) else str(value)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta http-equiv="refresh" content="5">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _banners(doc: Mapping[str, Any]) -> list[str]:
    """The document's banners (shared.status.banners: the same ones the command line prints)."""
    return [
        f'<div class="banner" id="{b.ident}">{_e(b.title)}: {_e(b.reason)}</div>'
        for b in banners(doc)
    ]


def _reference(ref: Mapping[str, Any]) -> str:
    versions = ref["versions"] or {}
    rows = "".join(
        f"<dt>{_e(key)}</dt><dd><code>{_e(versions.get(key, _MISSING))}</code></dd>"
        for key in ref["compared_keys"]
    )
    stale = "yes: " + _e(ref["stale_reason"]) if ref["stale"] else "no"
    return (
        f"<dl><dt>policy</dt><dd>{_e(ref['policy'])}</dd>"
        f"<dt>source</dt><dd>{_e(ref['source'])}</dd>"
        f"<dt>age</dt><dd>{_e(format_age(ref['age_seconds']))} "
        f"<span class=muted>(max {_e(format_age(ref['max_age_seconds']))})</span></dd>"
        f"<dt>stale</dt><dd>{stale}</dd>{rows or '<dt>versions</dt><dd>none</dd>'}</dl>"
    )


def _versions_cell(member: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """One line per compared key: the member's value, highlighted beside the reference's
    when they differ ("*": versions not observed recently, so none can be trusted)."""
    differences = member["version_differences"]
    lines = []
    for key in reference["compared_keys"]:
        value = (member["versions"] or {}).get(key)
        ref_value = (reference["versions"] or {}).get(key)
        shown = f"<code>{_e(value)}</code>" if value is not None else "not observed"
        if key in differences or "*" in differences:
            why = "not observed recently" if "*" in differences else "differs from the reference"
            shown = f'<span class="version-diff" data-key="{_e(key)}" title="{why}">{shown}</span>'
        if value != ref_value:
            shown += f' <span class="ref">ref <code>{_e(ref_value or _MISSING)}</code></span>'
        lines.append(f'<div><span class="key">{_e(key)}</span> {shown}</div>')
    return f'<td class="versions">{"".join(lines) or _MISSING}</td>'


def _shares(redirects: list[Mapping[str, Any]]) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    for entry in redirects:
        counts[entry["member"]] = counts.get(entry["member"], 0) + int(entry["count"])
    return counts, sum(counts.values())


def _member_row(
    name: str, m: Mapping[str, Any], doc: Mapping[str, Any], counts: dict[str, int], total: int
) -> str:
    reference = doc["reference"]
    prime = ' <span class="prime" title="prime">★ prime</span>' if m["prime"] else ""
    reasons = "<br>".join(_e(r) for r in m["reasons"]) or '<span class="muted">-</span>'
    if m.get("last_error"):
        reasons += f'<br><span class="muted">last error: {_e(m["last_error"])}</span>'
    moved = "".join(
        f'<br><span class="muted moved">{endpoint} answers at {_e(m[endpoint + "_url"])}</span>'
        for endpoint in ("health", "versions")
        if m.get(endpoint + "_url") not in (None, f"{m['url']}/{endpoint}")
    )
    count = counts.get(name, 0)
    share = f"{100 * count / total:.0f}% ({count})" if total else "- (0)"
    cells = [
        f"<td><b>{_e(name)}</b>{prime}<br><span class=muted>{_e(m['url'])}</span>{moved}</td>",
        f'<td><span class="state state-{_e(m["state"])}">{_e(m["state"])}</span></td>',
        f'<td class="reasons">{reasons}</td>',
        _versions_cell(m, reference),
        f'<td class="num">{_e(_num(m["total_pods"]))} / {_e(_num(m["quota"]))}</td>',
        f'<td class="num">{_e(format_age(m["record_age_seconds"]))}</td>',
        f'<td class="num">{_e(format_age(m["health_age_seconds"]))}</td>',
        f'<td class="num">{_e(format_age(m["versions_age_seconds"]))}</td>',
        f'<td class="num">{_e(_num(m["weight"]))} → {_e(_num(m["effective_weight"]))}</td>',
        f'<td class="num">{_e(share)}</td>',
    ]
    return f'<tr id="member-{_e(name)}" data-state="{_e(m["state"])}">' + "".join(cells) + "</tr>"


def _members_table(doc: Mapping[str, Any]) -> str:
    counts, total = _shares(doc.get("redirects", []))
    head = ["member", "state", "reasons", "versions (vs the reference)"]
    head += ["pods / quota", "record age", "health age", "versions age", "weight → effective"]
    head.append(f"traffic share ({total} launches)")
    rows = "\n".join(_member_row(name, m, doc, counts, total) for name, m in doc["members"].items())
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody></table>"


def _freshness(doc: Mapping[str, Any]) -> str:
    router, checker = doc["router"], doc["checker"]
    health = "ok" if router.get("reason") is None else "unhealthy: " + _e(router["reason"])
    targets = ", ".join(_e(t) for t in doc["targets"]) or "nobody (503)"
    return (
        f"<dl><dt>launches go to</dt><dd>{targets}</dd>"
        f"<dt>checker heartbeat age</dt><dd>{_e(format_age(checker['heartbeat_age_seconds']))}"
        f" <span class=muted>({_e(checker['checker_id'] or 'no checker id')})</span></dd>"
        f"<dt>router view age</dt><dd>{_e(format_age(router.get('view_age_seconds')))}"
        f" <span class=muted>(max {_e(format_age(router.get('max_view_age_seconds')))},"
        f" generation {_e(router.get('generation'))})</span></dd>"
        f"<dt>router health</dt><dd>{health}</dd></dl>"
    )


def render_status_page(doc: Mapping[str, Any]) -> str:
    """The HTML page for a ``/status.json`` document (the 503 shape included)."""
    if "members" not in doc:
        reason = doc.get("error") or "no view of the federation yet"
        body = (
            "<h1>fedredirect router: no view yet</h1>"
            f'<div class="banner" id="banner-no-view">{_e(reason)}</div>'
            "<p>This router has no evaluated view of the federation, so it cannot redirect "
            "launches. This page refreshes every 5 seconds.</p>"
        )
        return _page("fedredirect: no view", body)
    fallback = doc["fallback"]
    body = "\n".join(
        [
            "<h1>fedredirect: what this router uses now</h1>",
            *_banners(doc),
            "<h2>Reference version</h2>",
            _reference(doc["reference"]),
            f"<h2>Members</h2><p class=muted>fallback policy: {_e(fallback['policy'])}; "
            "traffic share counts launches redirected by this router since it started.</p>",
            _members_table(doc),
            "<h2>Freshness</h2>",
            _freshness(doc),
        ]
    )
    return _page("fedredirect status", body)
