"""The operator's status page: the status document (shared/status.py) rendered as one HTML
page, with the pictures of the recent past (router.pictures).

It is a pure function of those documents, so the page and the JSON can never disagree, and
every value from it goes through :func:`html.escape` (member reasons quote remote answers).
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any

from router.pictures import SVG_DEFS, render_pictures
from shared.humanize import format_age, format_window
from shared.status import banners, launch_counts, launch_share_json
from shared.weights import number

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .6em}h2{font-size:1.1em;margin:1.2em 0 .4em}
.banner{padding:.6em 1em;margin:.4em 0;border-radius:4px;border:1px solid #c62828;
background:#ffebee;font-weight:600}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%;table-layout:fixed}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#eee}td.num{text-align:right}
col.c-member{width:12%}col.c-state{width:8%}col.c-reasons{width:14%}col.c-versions{width:14%}
col.c-pods{width:6%}col.c-launches{width:8%}col.c-age{width:5%}col.c-weight{width:5%}
col.c-effective{width:12%}col.c-share{width:7%}col.c-recent{width:8%}
td.effective .reason{display:block;color:#555;font-size:.9em}
.versions .key{color:#555;font-size:.9em}.versions div{margin:.1em 0}
.state{padding:.1em .4em;border-radius:3px;font-weight:600;display:inline-block}
.state-eligible{background:#c8e6c9}.state-full{background:#ffe0b2}
.state-version_mismatch{background:#fff59d}.state-drained{background:#d1c4e9}
.state-stale,.state-unreachable,.state-unhealthy{background:#ffcdd2}
.state-failing{background:#f8bbd0}.ejected{color:#ad1457;font-weight:600}
.version-diff{background:#ffeb3b;outline:2px solid #f57f17;font-weight:600}
.ref{color:#666;font-size:.9em}.prime{color:#b8860b}.muted{color:#777}
.compatible{color:#2e7d32;font-size:.9em}
code{font-size:.95em;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2em 1em;margin:0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
nav.windows a{margin-right:.6em}nav.windows a[aria-current]{font-weight:700;color:#222}
.strip{display:grid;grid-template-columns:14em minmax(0,1fr);align-items:center;gap:.5em;
margin:2px 0}.strip .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.strip svg{width:100%;height:18px;display:block;background:#fff}
.axis{position:relative;height:1.4em;margin-left:14.5em;font-size:11px;color:#555}
.axis span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.axis span.first{transform:none}.axis span.last{transform:translateX(-100%)}
.seg-eligible,.seg-fresh,.seg-gating{fill:#66bb6a}.seg-full{fill:#ffa726}
.seg-version_mismatch{fill:#fdd835}.seg-drained{fill:#9575cd}
.seg-stale,.seg-unreachable,.seg-unhealthy,.seg-suspended{fill:#e53935}
.seg-failing{fill:#d81b60}
.seg-no_history{fill:url(#no-history)}
.mark{fill:#111}.drain-mark{fill:#4527a0}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;
width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.shares .bar{display:grid;grid-template-columns:14em minmax(0,1fr);gap:.5em;margin:2px 0}
.shares svg{width:100%;height:14px;display:block;background:#eee}
"""


_MISSING = "-"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | int | None) -> str:
    if value is None:
        return _MISSING
    return f"{value:g}" if isinstance(value, float) else str(value)


#: Every few seconds, fetch this page again and swap its <main> in (no full reload, so the
#: scroll position and whatever is being hovered stay); without JavaScript, the <noscript>
#: refresh reloads the whole page instead.
_REFRESH = """
(function(){var busy=false;setInterval(function(){if(busy)return;busy=true;
fetch(location.href,{cache:"no-store"}).then(function(r){return r.text()}).then(function(t){
var doc=new DOMParser().parseFromString(t,"text/html"),m=doc.querySelector("main"),
o=document.querySelector("main");if(m&&o){o.replaceWith(document.adoptNode(m));
document.title=doc.title}}).catch(function(){}).finally(function(){busy=false})},%d)})();
"""
REFRESH_SECONDS = 5


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n"
        f"<script>{_REFRESH % (REFRESH_SECONDS * 1000)}</script>\n</body></html>\n"
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
    when they differ ("*": versions not observed recently, so none can be trusted), and
    which rule of ``versions.compatible`` lets a version that differs count as the same."""
    differences = member["version_differences"]
    compatible = member.get("compatible_versions") or {}
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
        if key in compatible:
            level = compatible[key]["compatible"]
            shown += f' <span class="compatible" data-key="{_e(key)}">compatible with the '
            shown += f"reference ({_e(level)})</span>"
        lines.append(f'<div><span class="key">{_e(key)}</span> {shown}</div>')
    return f'<td class="versions">{"".join(lines) or _MISSING}</td>'


def _shares(redirects: list[Mapping[str, Any]]) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    for entry in redirects:
        counts[entry["member"]] = counts.get(entry["member"], 0) + int(entry["count"])
    return counts, sum(counts.values())


def _launches_cell(m: Mapping[str, Any]) -> str:
    """Failed of launched in the window, as the member's own metrics count them; until when
    it is ejected for failing them; or why its metrics could not be read (a note only)."""
    outcomes = m.get("outcomes")
    if outcomes is None:
        return '<td class="num launches"><span class="muted" title="metrics not read">-</span></td>'
    ratio = outcomes["failure_ratio"]
    lines = [
        f"{outcomes['failures']} / {outcomes['launches']} failed",
        f'<span class="muted">{f"{ratio:.0%} " if ratio is not None else ""}'
        f"in {outcomes['window_seconds']:.0f}s</span>",
    ]
    if "failing" in m["excluded_by"] and outcomes["ejected_until"] is not None:
        until = time.strftime("%H:%M:%S", time.gmtime(outcomes["ejected_until"]))
        lines.append(
            f'<span class="ejected" title="ejection {outcomes["ejections"]} in a row">'
            f"ejected until {until} UTC</span>"
        )
    if outcomes["error"]:
        lines.append(
            f'<span class="muted metrics-note">metrics not read: {_e(outcomes["error"])}</span>'
        )
    return (
        f'<td class="num launches" data-launches="{outcomes["launches"]}" '
        f'data-failures="{outcomes["failures"]}">{"<br>".join(lines)}</td>'
    )


def _recent_cell(m: Mapping[str, Any]) -> str:
    """Its share of this router's launches in the window (``bounded``), against its
    weighted share and bound, and how many launches it was passed over for."""
    recent = m["recent_launches"]
    share = recent["share"]
    lines = [f"{share:.0%} ({recent['launches']})" if share is not None else "- (0)"]
    if recent["bound"] is not None:
        lines.append(
            f'<span class="muted">bound {recent["bound"]}, '
            f"weighted share {recent['weighted_share']:.0%}</span>"
        )
    if recent["passed_over"]:
        lines.append(f'<span class="muted">passed over {recent["passed_over"]}</span>')
    return (
        f'<td class="num recent" data-launches="{recent["launches"]}" '
        f'data-passed-over="{recent["passed_over"]}">{"<br>".join(lines)}</td>'
    )


def _effective_cell(m: Mapping[str, Any]) -> str:
    """The weight launches are balanced by, and why it is not the configured one
    (shared.weights words it: the same phrases /why and the command line print)."""
    reasons = "".join(f'<span class="reason">{_e(r)}</span>' for r in m["weight_reasons"])
    return (
        f'<td class="effective" data-effective="{_e(m["effective_weight"])}">'
        f"<b>{_e(number(m['effective_weight']))}</b>{reasons}</td>"
    )


def _share_cell(count: int, total: int, recent: Mapping[str, Any] | None) -> str:
    """Its share of this router's launches since it started, and of every router's over
    the recent window (history's counts, ``launch_share``) when they were read."""
    share = f"{100 * count / total:.0f}% ({count})" if total else "- (0)"
    if recent is not None:
        part = f"{recent['share']:.0%}" if recent["share"] is not None else "-"
        share += (
            f'<br><span class="muted launch-share" data-launches="{recent["launches"]}">'
            f"{part} ({recent['launches']}) in the last {format_window(recent['window_seconds'])}, "
            "every router</span>"
        )
    return f'<td class="num share">{share}</td>'


def _member_row(
    name: str,
    m: Mapping[str, Any],
    doc: Mapping[str, Any],
    counts: dict[str, int],
    total: int,
    recent: Mapping[str, Any] | None,
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
    cells = [
        f"<td><b>{_e(name)}</b>{prime}<br><span class=muted>{_e(m['url'])}</span>{moved}</td>",
        f'<td><span class="state state-{_e(m["state"])}">'
        f"{_e(m['state']).replace('_', '_<wbr>')}</span></td>",
        f'<td class="reasons">{reasons}</td>',
        _versions_cell(m, reference),
        f'<td class="num">{_e(_num(m["total_pods"]))} / {_e(_num(m["quota"]))}</td>',
        _launches_cell(m),
        f'<td class="num">{_e(format_age(m["record_age_seconds"]))}</td>',
        f'<td class="num">{_e(format_age(m["health_age_seconds"]))}</td>',
        f'<td class="num">{_e(format_age(m["versions_age_seconds"]))}</td>',
        f'<td class="num weight">{_e(number(m["weight"]))}</td>',
        _effective_cell(m),
        _share_cell(counts.get(name, 0), total, recent),
    ]
    if m.get("recent_launches") is not None:
        cells.append(_recent_cell(m))
    return f'<tr id="member-{_e(name)}" data-state="{_e(m["state"])}">' + "".join(cells) + "</tr>"


def _members_table(doc: Mapping[str, Any], pictures: Mapping[str, Any] | None) -> str:
    """One row a member; each one's share of every router's recent launches from the
    document, else from the pictures' share chart (the counts it draws per router)."""
    counts, total = _shares(doc.get("redirects", []))
    head = ["member", "state", "reasons", "versions (vs the reference)"]
    head += ["pods / quota", "failed launches", "record age", "health age", "versions age"]
    head += ["weight", "effective weight, and why", f"traffic share ({total} launches)"]
    cols = ["member", "state", "reasons", "versions", "pods", "launches", "age", "age", "age"]
    cols += ["weight", "effective", "share"]
    recent = [m["recent_launches"] for m in doc["members"].values() if m.get("recent_launches")]
    if recent:  # balanced by ``bounded``: this router's launches in its window
        head.append(f"recent share (last {recent[0]['window_seconds']:g}s)")
        cols.append("recent")
    drawn = launch_counts(pictures)
    rows = "\n".join(
        _member_row(
            name, m, doc, counts, total, m.get("launch_share") or launch_share_json(name, drawn)
        )
        for name, m in doc["members"].items()
    )
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    colgroup = "".join(f'<col class="c-{c}">' for c in cols)
    return (
        f"<table><colgroup>{colgroup}</colgroup><thead><tr>{header}</tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody></table>"
    )


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


def render_status_page(doc: Mapping[str, Any], pictures: Mapping[str, Any] | None = None) -> str:
    """The HTML page for a status document (the 503 shape included), with the pictures of
    a ``shared.timeline.timeline`` document when there is one."""
    if "members" not in doc:
        reason = doc.get("error") or "no view of the federation yet"
        body = (
            "<main><h1>fedredirect router: no view yet</h1>"
            f'<div class="banner" id="banner-no-view">{_e(reason)}</div>'
            "<p>This router has no evaluated view of the federation, so it cannot redirect "
            f"launches. This page refreshes every {REFRESH_SECONDS} seconds.</p></main>"
        )
        return _page("fedredirect: no view", body)
    fallback = doc["fallback"]
    body = "\n".join(
        [
            f'<main data-evaluated-at="{_e(doc["evaluated_at"])}">{SVG_DEFS}',
            "<h1>fedredirect: what this router uses now</h1>",
            *_banners(doc),
            render_pictures(pictures),
            "<h2>Reference version</h2>",
            _reference(doc["reference"]),
            f"<h2>Members</h2><p class=muted>fallback policy: {_e(fallback['policy'])}; "
            "traffic share counts launches redirected by this router since it started, and "
            "below, every router's over the recent window; a fallback or outage set balances "
            "by the configured weights.</p>",
            _members_table(doc, pictures),
            "<h2>Freshness</h2>",
            _freshness(doc),
            "</main>",
        ]
    )
    return _page("fedredirect status", body)
