"""The report as one self-contained HTML page: inline SVG charts, tables, inline CSS.

Nothing is fetched: no script, no external stylesheet, font or image; every
string from the events or the policy is HTML-escaped. The page is deterministic
(the same inputs give the same bytes), so a report can be diffed or archived.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from ..control.replay import change_kind, change_rule, diff_records
from ..lang.lexical import fmt
from . import charts
from .timeline import Timeline, units

MAX_ROWS = 200  # rows of a long table shown (the rest are counted, not listed)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1180px;color:#1a1a1a;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd;
padding-bottom:4px}.sub{color:#555;margin-top:0}figure{margin:8px 0}figure svg{max-width:100%;
height:auto}table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:3px 10px;
text-align:right;border-bottom:1px solid #eee}th{background:#f4f6f8}td.l,th.l{text-align:left}
.k{display:inline-block;margin-right:18px}.k b{font-size:18px;display:block}.ok{color:#2e7d32}
.bad{color:#c62828}.approved{color:#2e7d32}.clipped{color:#b26a00}.rejected{color:#c62828}
.note{color:#666;font-size:12px}
"""


def _money(value: int) -> str:
    return f"{units(value):,.2f}".rstrip("0").rstrip(".")


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are text (left-aligned)."""
    cls = ['class="l"' if i < left else "" for i in range(len(head))]
    out = ["<table><tr>"]
    out += [f"<th {c}>{escape(h)}</th>" for c, h in zip(cls, head, strict=True)]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>")
        for c, cell in zip(cls, row, strict=True):
            text = cell if isinstance(cell, _Raw) else escape(str(cell))
            out.append(f"<td {c}>{text}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


class _Raw(str):
    """Table cell HTML that is already escaped."""


def _summary(t: Timeline) -> str:
    counts = {"approved": 0, "clipped": 0, "rejected": 0}
    for d in t.decisions:
        counts[d.outcome] += 1
    modes = sorted({s.mode for s in t.samples}) or ["-"]
    peak = max((s.active + s.reserved for s in t.samples), default=0)
    cells = [
        ("events", f"{t.events:,}"),
        ("decisions", f"{len(t.decisions):,}"),
        *((k, f"{n:,}") for k, n in counts.items()),
        ("peak heat", _money(peak)),
        ("modes", ", ".join(modes)),
    ]
    if t.marks:  # marks revalued positions: their unrealized P&L (issue 23)
        cells += [
            ("marks", f"{t.marks:,}"),
            ("unrealized P&L at the end", _money(t.unrealized_end)),
            ("lowest unrealized P&L", _money(t.unrealized_low)),
        ]
    return "".join(
        f'<span class="k {escape(k)}"><b>{escape(v)}</b>{escape(k)}</span>' for k, v in cells
    )


def _rules(base: Timeline, other: Timeline | None) -> str:
    names = sorted(set(base.rules) | set(other.rules if other else ()))
    head = ["rule", "clips", "risk clipped", "rejections", "risk rejected"]
    if other is not None:
        head += [
            "clips (what-if)",
            "risk clipped (what-if)",
            "rejections (what-if)",
            "risk rejected (what-if)",
        ]

    def cells(t: Timeline, name: str) -> list[Any]:
        r = t.rules.get(name)
        if r is None:
            return [0, "0", 0, "0"]
        return [r.clips, _money(r.clipped), r.rejects, _money(r.rejected)]

    def weight(name: str) -> tuple[int, str]:
        r = base.rules.get(name)
        return (-(r.clipped + r.rejected) if r else 0, name)

    rows = [
        [name, *cells(base, name), *(cells(other, name) if other is not None else [])]
        for name in sorted(names, key=weight)
    ]
    if not rows:
        return "<p>No rule clipped or rejected anything.</p>"
    return _table(head, rows)


def _reconciliation(base: Timeline, other: Timeline | None) -> str:
    runs = [("current", base)] + ([("what-if", other)] if other is not None else [])
    keys = (
        "reserved",
        "filled",
        "expired",
        "cancelled",
        "released_at_close",
        "still_reserved",
        "balance",
        "late",
        "overfill",
    )
    head = ["", *(k.replace("_", " ") for k in keys)]
    rows = []
    for label, t in runs:
        totals = t.totals()
        row: list[Any] = [label]
        for k in keys:
            if k == "balance":
                ok = totals[k] == 0
                row.append(
                    _Raw(
                        f'<span class="{"ok" if ok else "bad"}">'
                        f"{'balances' if ok else escape(_money(totals[k]))}</span>"
                    )
                )
            else:
                row.append(_money(totals[k]))
        rows.append(row)
    trades = sorted(base.trades.values(), key=lambda tr: tr.intent_id)
    interesting = [tr for tr in trades if tr.expired or tr.cancelled or tr.late or tr.overfill]
    shown = (interesting or trades)[:MAX_ROWS]
    detail = _table(
        [
            "intent",
            "strategy",
            "symbol",
            "reserved",
            "filled",
            "expired",
            "cancelled",
            "released at close",
            "late (orphan)",
            "ended",
        ],
        (
            [
                tr.intent_id,
                tr.strategy,
                tr.symbol,
                _money(tr.reserved),
                _money(tr.filled),
                _money(tr.expired),
                _money(tr.cancelled),
                _money(tr.released_at_close),
                _money(tr.late),
                tr.ended,
            ]
            for tr in shown
        ),
        left=3,
    )
    what = "trades that expired, were cancelled or filled late" if interesting else "trades"
    more = len(interesting or trades) - len(shown)
    note = f'<p class="note">{len(shown)} {what}{f", {more} more not listed" if more else ""}.</p>'
    return _table(head, rows) + note + detail


def _changes(base: Timeline, other: Timeline) -> str:
    rows = []
    kinds: dict[str, int] = {}
    for old_d, new_d in zip(base.decisions, other.decisions, strict=True):
        old, new = old_d.record, new_d.record
        if diff_records(old, new) is None:
            continue
        kind = change_kind(old, new)
        kinds[kind] = kinds.get(kind, 0) + 1
        rows.append(
            [
                "-" if old.get("seq") is None else old.get("seq"),
                old.get("intent_id") or "?",
                f"{old.get('strategy') or '?'} {old.get('symbol') or '?'}",
                kind,
                change_rule(old, new) or "-",
                _Raw(
                    f'<span class="{escape(old_d.outcome)}">{escape(str(old.get("decision_code")))} '
                    f"{escape(fmt(old.get('approved_risk_abs', 0.0)))}</span>"
                ),
                _Raw(
                    f'<span class="{escape(new_d.outcome)}">{escape(str(new.get("decision_code")))} '
                    f"{escape(fmt(new.get('approved_risk_abs', 0.0)))}</span>"
                ),
            ]
        )
    if not rows:
        return "<p>No decision would change.</p>"
    summary = ", ".join(
        f"{escape(k)}: {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    more = len(rows) - MAX_ROWS
    table = _table(
        ["#", "intent", "who", "change", "rule", "current", "what-if"], rows[:MAX_ROWS], left=5
    )
    tail = f'<p class="note">{more} more changes not listed.</p>' if more > 0 else ""
    return f"<p>{len(rows)} of {len(base.decisions)} decisions would change ({summary}).</p>{table}{tail}"


def _cohorts_note(t: Timeline) -> str:
    """What the cohort charts show: the hottest one by one, the rest summed."""
    drawn, seen = len(t.cohorts), t.cohorts_seen
    if seen <= drawn:
        return f"Every cohort that held risk ({seen}), by peak heat."
    return (
        f"The {drawn} cohorts with the highest peak heat, one by one; the other "
        f"{seen - drawn:,} of the {seen:,} cohorts that held risk are summed into one chart."
    )


def render(base: Timeline, other: Timeline | None, *, title: str, sources: str) -> str:
    """The whole page."""
    p = base.policy
    sub = f"policy {p.name} v{p.version} ({p.content_hash[:19]}) · {sources}"
    if other is not None:
        q = other.policy
        sub += f" · what-if: {q.name} v{q.version} ({q.content_hash[:19]})"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(sub)}</p>',
        f"<div>{_summary(base)}</div>",
        "<h2>Portfolio heat against its cap</h2>",
        '<p class="note">Heat is active (filled) plus reserved risk; the dashed line is the '
        "cap each <code>limit: X - portfolio.heat</code> rule allows in the mode in force. "
        "Shaded: the portfolio was not in normal mode.</p>",
        f'<figure id="portfolio-heat">{charts.portfolio_heat(base, other)}</figure>',
        "<h2>Cohort heat against its cap</h2>",
        f'<p class="note">{_cohorts_note(base)}</p>',
        f'<figure id="cohort-heat">{charts.cohort_heat(base, other)}</figure>',
        "<h2>Decisions over time</h2>",
        f'<figure id="decisions">{charts.decisions(base, "current policy" if other else "")}</figure>',
    ]
    if other is not None:
        parts.append(
            f'<figure id="decisions-what-if">{charts.decisions(other, "what-if policy")}</figure>'
        )
    parts += [
        "<h2>Binding rules</h2>",
        '<p class="note">How often each rule clipped or rejected, and the risk it took away '
        "(a clip: what it removed; a rejection: what the intent requested).</p>",
        _rules(base, other),
        "<h2>Reservations and fills</h2>",
        '<p class="note">Every reserved unit is filled, expires, is cancelled, is released '
        "when its trade closes, or is still held; late fills (after a cancel, expiry or "
        "close) are orphan positions, counted separately.</p>",
        f'<figure id="reconciliation">{charts.reconciliation(base, other)}</figure>',
        _reconciliation(base, other),
    ]
    if other is not None:
        parts += ["<h2>What-if: decisions that would change</h2>", _changes(base, other)]
    parts.append("</body></html>\n")
    return "\n".join(parts)


__all__ = ["MAX_ROWS", "render"]
