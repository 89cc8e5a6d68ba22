"""The report's charts, drawn with matplotlib as inline SVG.

Why matplotlib and SVG: the report must be one file that opens offline. A static
SVG per chart is text inside the HTML (no script, no network, tens of
kilobytes), prints and diffs well, and is drawn by every browser; matplotlib is
the most widely kept Python plotting library and renders without a display
(the ``Figure`` API, no pyplot state). plotly would embed about 3.5 MB of
JavaScript in every report for interactivity a daily review does not need.
Text stays text (``svg.fonttype: none``) and ids are salted with a fixed string,
so the same day gives the same bytes.

Long days are thinned before drawing: at most :data:`MAX_POINTS` steps per
series, each the peak of its interval (a cap line its minimum), so a breach is
never averaged away.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from .timeline import OTHER, Decision, Sample, Timeline, units

MAX_POINTS = 1500
COLOURS = {"approved": "#2e7d32", "clipped": "#ef8f00", "rejected": "#c62828"}
MODE_COLOURS = {"defensive": "#ffb300", "risk_off": "#d32f2f"}  # the classic tiers' own


def mode_colours(modes: Sequence[str]) -> dict[str, str]:
    """A colour for every mode after the first (normal is not shaded): the classic names keep
    theirs, any other from amber (mildest) to deep red (most severe), in the policy's order."""
    rest = list(modes[1:])
    ramp = matplotlib.colormaps["YlOrRd"]
    step = 0.5 / max(len(rest) - 1, 1)
    return {
        m: MODE_COLOURS.get(m) or mcolors.to_hex(ramp(0.4 + step * i)) for i, m in enumerate(rest)
    }


BASE, WHAT_IF = "#1f4e79", "#8e24aa"

# matplotlib.dates has no annotations: typed once here.
_date2num: Callable[[Any], Any] = mdates.date2num


def x(times: Sequence[datetime]) -> list[float]:
    """Datetimes as matplotlib's date numbers (days since the epoch)."""
    return [float(v) for v in _date2num(list(times))] if times else []


matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "policy-engine-report",
        "font.family": "sans-serif",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def margins(
    fig: Figure, left: float = 0.8, right: float = 0.2, top: float = 0.3, bottom: float = 0.55
) -> None:
    """Fixed margins, in inches, around the axes (room for the tick labels, the axis labels
    and a legend outside the axes). Laid out once, by arithmetic: matplotlib's tight layout
    and ``bbox_inches="tight"`` each draw the whole figure again to measure it, and took
    most of a report's time."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )


def svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no date)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # The RDF metadata block only names the tool, with namespace URLs a reader may mistake for
    # fetches; the page says what drew it.
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if start >= 0 and end > start:
        text = text[:start] + text[end + len("</metadata>") :]
    return text


def thin(
    times: Sequence[datetime], values: Sequence[float], peak: bool = True
) -> tuple[list[float], list[float]]:
    """At most MAX_POINTS steps, one per equal stretch of time: each the max (or min) of the
    samples in it, drawn from the stretch's first sample (a long day's samples are denser
    where they were merged less, so stretches are of time, not of samples)."""
    return thin_at(x(times), values, peak)


def thin_at(
    xs: list[float], values: Sequence[float], peak: bool = True
) -> tuple[list[float], list[float]]:
    """:func:`thin` of times already converted with :func:`x` (a chart of many panels
    converts its times once). A NaN (no cap) never wins a stretch that has a number."""
    if len(xs) <= MAX_POINTS:
        return xs, list(values)
    at = np.asarray(xs, dtype=float)
    first, width = at[0], (at[-1] - at[0]) / MAX_POINTS or 1.0
    slots = np.minimum(((at - first) / width).astype(np.int64), MAX_POINTS - 1)
    starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])  # each stretch's first
    pick = np.fmax if peak else np.fmin  # (fmax and fmin pass over a NaN)
    picked = pick.reduceat(np.asarray(values, dtype=float), starts)
    return at[starts].tolist(), picked.tolist()


def _bands(samples: Sequence[Sample], end: datetime) -> list[tuple[float, float, str]]:
    """The stretches of ``samples`` in each mode other than normal: (start, end, mode)."""
    out: list[tuple[float, float, str]] = []
    start: float | None = None
    mode = "normal"
    for s in [*samples, None]:
        new = "normal" if s is None else s.mode
        if new != mode or s is None:  # a time is converted only where the mode changes
            at = float(_date2num(end if s is None else s.at))
            if start is not None and mode != "normal":
                out.append((start, at, mode))
            start, mode = at, new
    return out


def _mode_bands(
    ax: Axes,
    samples: Sequence[Sample],
    end: datetime,
    colours: Mapping[str, str],
    bands: list[tuple[float, float, str]] | None = None,
) -> set[str]:
    """Shade the stretches in a mode other than normal (``bands``, if already found);
    returns the modes shown."""
    shown: set[str] = set()
    for start, stop, mode in _bands(samples, end) if bands is None else bands:
        if mode in colours:
            ax.axvspan(start, stop, color=colours[mode], alpha=0.14, lw=0)
            shown.add(mode)
    return shown


# The shortest time axis drawn, in days (matplotlib's date unit): two minutes. A day of a few
# seconds would leave the date locator no tick interval to pick (it warns and guesses).
_MIN_SPAN = 2 / 1440


def _time_axis(ax: Axes) -> None:
    lo, hi = ax.get_xlim()
    if hi - lo < _MIN_SPAN:
        mid = (lo + hi) / 2
        ax.set_xlim(mid - _MIN_SPAN / 2, mid + _MIN_SPAN / 2)
    locator = cast(Callable[..., Any], mdates.AutoDateLocator)(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(cast(Callable[[str], Any], mdates.DateFormatter)("%H:%M"))
    ax.set_xlabel("event time (UTC)")
    ax.grid(True, axis="y", alpha=0.3)


def portfolio_heat(base: Timeline, other: Timeline | None = None) -> str:
    """Portfolio heat (active + reserved) over event time against its caps, modes shaded."""
    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot()
    samples = base.samples
    if not samples:
        return _empty(fig, ax, "no timestamped event")
    end = samples[-1].at
    times = x([s.at for s in samples])  # (converted once for every series)
    active = [units(s.active) for s in samples]
    heat = [units(s.active + s.reserved) for s in samples]
    t, h = thin_at(times, heat)
    ta, a = thin_at(times, active)
    ax.fill_between(ta, a, step="post", color=BASE, alpha=0.25, lw=0, label="active (filled)")
    ax.step(t, h, where="post", color=BASE, lw=1.6, label="heat (active + reserved)")
    for rule in sorted({r for s in samples for r, _ in s.caps}):
        caps = [dict(s.caps).get(rule, float("nan")) for s in samples]
        tc, c = thin_at(times, caps, peak=False)
        ax.step(tc, c, where="post", color="#555", lw=1.2, ls="--", label=f"cap: {rule}")
    if other is not None and other.samples:
        o = other.samples
        other_times = x([s.at for s in o])
        to, ho = thin_at(other_times, [units(s.active + s.reserved) for s in o])
        ax.step(to, ho, where="post", color=WHAT_IF, lw=1.4, ls="-.", label="heat, what-if")
        for rule in sorted({r for s in o for r, _ in s.caps}):
            caps = [dict(s.caps).get(rule, float("nan")) for s in o]
            tc, c = thin_at(other_times, caps, peak=False)
            ax.step(tc, c, where="post", color=WHAT_IF, lw=1, ls=":", label=f"cap, what-if: {rule}")
    colours = mode_colours(base.policy.declared_modes)
    shown = _mode_bands(ax, samples, end, colours)
    _time_axis(ax)
    ax.set_ylabel("risk")
    ax.set_ylim(bottom=0)
    handles, _labels = ax.get_legend_handles_labels()
    order = list(colours)
    handles += [
        Patch(color=colours[m], alpha=0.3, label=f"mode {m}")
        for m in sorted(shown, key=order.index)
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    margins(fig, right=2.6)
    return svg(fig)


def cohort_heat(base: Timeline, other: Timeline | None = None) -> str:
    """One small chart per cohort the timeline draws one by one (the hottest by peak heat,
    at most :data:`~.timeline.MAX_COHORTS`), heat against its tightest cap; then the rest
    of the cohorts summed as one (:data:`~.timeline.OTHER`), when they held any risk."""
    peaks: dict[str, int] = {}
    for s in base.samples:
        for name, held, _cap in s.cohorts:
            peaks[name] = max(peaks.get(name, 0), held)
    names = [n for n in (*base.cohorts, OTHER) if peaks.get(n, 0) > 0]
    if not names:
        fig = Figure(figsize=(10, 1.5))
        return _empty(fig, fig.add_subplot(), "no cohort held risk")
    cols = 2 if len(names) > 1 else 1
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(10, 2.4 * rows))
    end = base.samples[-1].at
    bands = _bands(base.samples, end)
    colours = mode_colours(base.policy.declared_modes)
    # each timeline's times converted, and its samples' cohorts looked up by name, once
    converted: dict[int, tuple[list[float], list[dict[str, tuple[int, float | None]]]]] = {}
    panels: list[Axes] = []
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)  # (only the cells drawn: no hidden axes)
        panels.append(ax)
        for timeline, colour, style, label in (
            (base, BASE, "-", ""),
            (other, WHAT_IF, "-.", ", what-if"),
        ):
            if timeline is None or not timeline.samples:
                continue
            seen = converted.get(id(timeline))
            if seen is None:
                seen = converted[id(timeline)] = (
                    x([s.at for s in timeline.samples]),
                    [{n: (hu, cu) for n, hu, cu in s.cohorts} for s in timeline.samples],
                )
            xs, by_name = seen
            found = [row.get(name) for row in by_name]
            heat = [units(r[0]) if r else 0.0 for r in found]
            cap = [r[1] if r and r[1] is not None else float("nan") for r in found]
            th, hv = thin_at(xs, heat)
            ax.step(th, hv, where="post", color=colour, lw=1.4, ls=style, label=f"heat{label}")
            tc, c = thin_at(xs, cap, peak=False)
            ax.step(
                tc,
                c,
                where="post",
                color="#555" if not label else colour,
                lw=1,
                ls="--",
                label=f"cap{label}",
            )
        _mode_bands(ax, base.samples, end, colours, bands)
        title = f"the other {base.cohorts_seen - len(base.cohorts):,} cohorts, summed"
        ax.set_title(title if name == OTHER else f"cohort {name}", loc="left", fontsize=9)
        ax.set_ylim(bottom=0)
    # One time axis for all (as sharex would, without its shared tickers): its dates on the
    # last row only, the panels above without ticks of their own (cheaper to draw).
    limits = [ax.get_xlim() for ax in panels]
    left, right = min(lo for lo, _ in limits), max(hi for _, hi in limits)
    for i, ax in enumerate(panels):
        ax.set_xlim(left, right)
        if i // cols == rows - 1:
            _time_axis(ax)
        else:
            ax.xaxis.set_major_locator(NullLocator())
            ax.set_xlabel("event time (UTC)")
            ax.grid(True, axis="y", alpha=0.3)
    handles, labels = panels[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=4, frameon=False)
    margins(fig, top=0.6)  # (the legend above the panels)
    fig.subplots_adjust(hspace=0.5, wspace=0.15)
    return svg(fig)


def decisions(timeline: Timeline, title: str = "") -> str:
    """Every decision at its event time: requested (hollow) and approved (filled) risk,
    coloured by outcome; a long day is drawn as counts per interval instead."""
    fig = Figure(figsize=(10, 3.2))
    ax = fig.add_subplot()
    timed = [d for d in timeline.decisions if d.at is not None]
    if not timed:
        return _empty(fig, ax, "no decision")
    if title:
        ax.set_title(title, loc="left", fontsize=9)
    if len(timed) <= MAX_POINTS:
        _scatter(ax, timed)
    else:
        _binned(ax, timed)
    if timeline.samples:
        colours = mode_colours(timeline.policy.declared_modes)
        _mode_bands(ax, timeline.samples, timeline.samples[-1].at, colours)
    _time_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    margins(fig, right=1.7)
    return svg(fig)


def _scatter(ax: Axes, timed: list[Decision]) -> None:
    for kind, colour in COLOURS.items():
        rows = [d for d in timed if d.outcome == kind]
        if not rows:
            continue
        at = x([d.at for d in rows if d.at is not None])
        req = [float(d.record.get("requested_risk_abs") or 0.0) for d in rows]
        got = [float(d.record.get("approved_risk_abs") or 0.0) for d in rows]
        ax.vlines(at, got, req, colors=colour, lw=0.8, alpha=0.6)
        ax.scatter(at, req, s=22, facecolors="none", edgecolors=colour, lw=1)
        ax.scatter(at, got, s=22, color=colour, label=f"{kind} ({len(rows)})")
    ax.set_ylabel("risk: requested (o) -> approved (•)")


def _binned(ax: Axes, timed: list[Decision]) -> None:
    points = x([d.at for d in timed if d.at is not None])
    first, last = points[0], points[-1]
    bins = 60
    width = (last - first) / bins or 1e-6
    counts = {k: [0] * bins for k in COLOURS}
    for d, at in zip(timed, points, strict=True):
        i = min(int((at - first) / width), bins - 1)
        counts[d.outcome][i] += 1
    edges = [first + i * width for i in range(bins + 1)]
    bottom = [0] * bins
    for kind, colour in COLOURS.items():  # stacked: one filled outline per outcome, not a
        top = [b + c for b, c in zip(bottom, counts[kind], strict=True)]  # bar per interval
        label = f"{kind} ({sum(counts[kind])})"
        ax.stairs(top, edges, baseline=bottom, fill=True, color=colour, lw=0, label=label)
        bottom = top
    ax.set_ylabel("decisions per interval")


def reconciliation(base: Timeline, other: Timeline | None = None) -> str:
    """Where reserved risk went: filled, expired, cancelled, released at close, still held."""
    keys = ("filled", "expired", "cancelled", "released_at_close", "still_reserved")
    colours = ("#2e7d32", "#c62828", "#ef8f00", "#607d8b", "#90caf9")
    runs = [("current", base)] + ([("what-if", other)] if other is not None else [])
    fig = Figure(figsize=(10, 1.2 + 0.6 * len(runs)))
    ax = fig.add_subplot()
    for y, (_label, timeline) in enumerate(reversed(runs)):
        totals = timeline.totals()
        left = 0.0
        for key, colour in zip(keys, colours, strict=True):
            width = units(totals[key])
            ax.barh(
                y, width, left=left, color=colour, label=key.replace("_", " ") if y == 0 else None
            )
            left += width
        ax.text(left, y, f"  reserved {units(totals['reserved']):,.0f}", va="center", fontsize=8)
    ax.set_yticks(range(len(runs)), [label for label, _ in reversed(runs)])
    ax.set_xlabel("risk")
    ax.margins(x=0.12)  # room for the "reserved" label at the end of each bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=5, frameon=False)
    margins(fig, top=0.1, bottom=0.95)
    return svg(fig)


def _empty(fig: Figure, ax: Axes, text: str) -> str:
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return svg(fig)


__all__ = ["MAX_POINTS", "cohort_heat", "decisions", "portfolio_heat", "reconciliation", "svg"]
