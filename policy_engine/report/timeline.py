"""A trading day as data: events run through a controller, sampled after every event.

:func:`simulate` feeds an events file through a :class:`PortfolioController` exactly
as ``policy run`` does (no wall clock; refused input answered and not counted as an
event), collects every record, and after each event samples what the report
draws: the event clock, the portfolio's heat (active and reserved) against its
caps, the mode, and the heat against its caps of the ``MAX_COHORTS`` cohorts
:func:`hottest` found (the highest peak heat), the rest summed as ``other``. So
each event costs the same however many cohorts the day has (2,000 distinct
cohorts sampled every one after every event: quadratic, 24 s and 389 MB). A what-if run keeps its own
policy: the file's ``policy`` events are not applied (as ``policy replay --policy``
does). Caps are :mod:`policy_engine.engine.caps`'s: the ``X`` of every
``limit: X - <scope>.heat`` rule, evaluated in the mode in force. Samples are kept
only when something drawn changed, so a long day costs memory in proportion to
its changes, and amounts stay exact integers of micro-units until drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..control.controller import PortfolioController
from ..control.events import Record
from ..control.records import outcome
from ..engine.caps import Caps
from ..engine.contracts import RISK_SCALE, to_units
from ..engine.policy import Policy

_SCALE = float(RISK_SCALE)
# What the report shows of a decision (and what a what-if compares).
_DECISION_KEYS = (
    "seq",
    "intent_id",
    "strategy",
    "symbol",
    "approved",
    "decision_code",
    "rule_id",
    "requested_risk_abs",
    "approved_risk_abs",
    "clips",
)
# Samples kept before pairs of neighbours are merged (peaks kept): a long day then costs
# bounded memory; the charts draw at most a few thousand steps anyway.
MAX_SAMPLES = 16_000
# Cohorts drawn one by one (the hottest by peak heat); every other cohort is summed into
# OTHER (its heat: the portfolio's minus theirs, since every trade counts in one cohort).
MAX_COHORTS = 8
OTHER = "(all others)"  # not a name a policy declares


@dataclass(frozen=True)
class Sample:
    """The drawn state after one event (amounts in micro-units)."""

    at: datetime
    active: int
    reserved: int
    caps: tuple[tuple[str, float], ...]  # (rule id, cap) of the portfolio
    mode: str
    # (cohort, heat units, tightest cap) of the cohorts drawn, then (OTHER, heat, None)
    cohorts: tuple[tuple[str, int, float | None], ...]


@dataclass
class Decision:
    """One decision as the report shows it."""

    index: int  # the event's position in the file
    at: datetime | None
    record: Record

    @property
    def outcome(self) -> str:
        return outcome(self.record)


@dataclass
class Rule:
    """How often one rule bound, and how much risk it took away (micro-units)."""

    clips: int = 0
    clipped: int = 0
    rejects: int = 0
    rejected: int = 0


@dataclass
class Trade:
    """One trade's reservation and what became of it (micro-units)."""

    intent_id: str
    strategy: str
    symbol: str
    reserved: int = 0
    filled: int = 0  # from the reservation
    late: int = 0  # fills after the trade had ended or released its remainder (orphans)
    overfill: int = 0  # fills beyond the reservation
    expired: int = 0
    cancelled: int = 0
    released_at_close: int = 0
    ended: str = "live"


@dataclass
class Timeline:
    """Everything the report draws of one run."""

    policy: Policy
    samples: list[Sample] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    trades: dict[str, Trade] = field(default_factory=dict)
    still_reserved: int = 0
    events: int = 0
    cohorts: tuple[str, ...] = ()  # the cohorts drawn one by one (the rest: OTHER)
    cohorts_seen: int = 0  # how many cohorts held risk during the day
    marks: int = 0  # `mark` events applied, and the portfolio's unrealized P&L (micro-units):
    unrealized_low: int = 0  # its lowest after any event, and at the end
    unrealized_end: int = 0

    def totals(self) -> dict[str, int]:
        """The reconciliation: every reserved unit is filled, expired, cancelled, released at
        close or still reserved (``balance`` is what is unaccounted for: 0)."""
        trades = self.trades.values()
        out = {
            key: sum(getattr(t, key) for t in trades)
            for key in ("reserved", "filled", "expired", "cancelled", "released_at_close")
        }
        out["still_reserved"] = self.still_reserved
        out["balance"] = out["reserved"] - sum(
            out[k]
            for k in ("filled", "expired", "cancelled", "released_at_close", "still_reserved")
        )
        out["late"] = sum(t.late for t in trades)
        out["overfill"] = sum(t.overfill for t in trades)
        return out


@dataclass(frozen=True)
class Hottest:
    """The cohorts a report draws one by one, and how many held risk in all."""

    names: tuple[str, ...]
    seen: int


def hottest(
    policy: Policy,
    events: Iterable[Mapping[str, Any]],
    *,
    equity: float = 0.0,
    limit: int = MAX_COHORTS,
    tick: Callable[[], None] | None = None,
) -> Hottest:
    """A first run of ``events``: the ``limit`` cohorts with the highest peak heat (ties by
    name). Linear: after each event only the cohorts its records name are read (a cohort's
    heat moves only with a trade counted in it, and every such step records its cohort)."""
    records: list[Record] = []
    ctl = PortfolioController(policy, equity=equity, records=records, clock=None)
    peaks: dict[str, int] = {}
    for event in events:
        if tick is not None:
            tick()
        records.clear()
        ctl.apply(event)
        cohorts = ctl.state.cohorts
        for rec in records:
            names = [rec.get("cohort"), *(m.get("to") for m in rec.get("moved") or ())]
            for name in names:
                bucket = cohorts.get(name) if isinstance(name, str) else None
                if bucket is not None:
                    key, heat = str(name), bucket.active_units + bucket.reserved_units
                    peaks[key] = max(peaks.get(key, 0), heat)
    ctl.close()
    held = [n for n, heat in peaks.items() if heat > 0]
    return Hottest(tuple(sorted(held, key=lambda n: (-peaks[n], n))[:limit]), len(held))


def simulate(
    policy: Policy,
    events: Iterable[Mapping[str, Any]],
    *,
    what_if: bool = False,
    equity: float = 0.0,
    tick: Callable[[], None] | None = None,
    cohorts: Hottest = Hottest((), 0),
) -> Timeline:
    """Run ``events`` through a fresh controller of ``policy`` and sample the day, drawing
    ``cohorts.names`` one by one and the rest as :data:`OTHER`."""
    records: list[Record] = []
    ctl = PortfolioController(policy, equity=equity, records=records, clock=None)
    timeline = Timeline(policy, cohorts=cohorts.names, cohorts_seen=cohorts.seen)
    caps: dict[int, Caps] = {}
    for index, event in enumerate(events):
        if tick is not None:
            tick()
        timeline.events += 1
        if what_if and event.get("type") == "policy":
            continue  # the what-if policy stays in force
        records.clear()
        decision = ctl.apply(event)
        clock = ctl.core.clock
        pnl = ctl.state.unrealized_units
        if event.get("type") == "mark":
            timeline.marks += 1
        timeline.unrealized_low = min(timeline.unrealized_low, pnl)
        timeline.unrealized_end = pnl
        for rec in records:
            _account(timeline, rec, index, clock, rec is decision)
        if clock is not None:
            current = ctl.policy
            reader = caps.get(id(current))
            if reader is None:
                reader = caps[id(current)] = Caps(current)
            _sample(timeline, ctl, reader, clock)
    timeline.policy = ctl.policy
    timeline.still_reserved = ctl.state.reserved_units
    ctl.close()
    return timeline


def _sample(timeline: Timeline, ctl: PortfolioController, caps: Caps, clock: datetime) -> None:
    state = ctl.state
    mode = ctl.policy.mode_of(state)  # (once: every cap below is read in it)
    table = state.cohorts
    drawn = []
    for name in timeline.cohorts:
        bucket = table.get(name)
        heat = 0 if bucket is None else bucket.active_units + bucket.reserved_units
        drawn.append((name, heat, _tightest(caps, state, name, mode)))
    rest = state.active_units + state.reserved_units - sum(heat for _n, heat, _c in drawn)
    cohorts = (*drawn, (OTHER, rest, None))
    sample = Sample(
        clock,
        state.active_units,
        state.reserved_units,
        caps.values(state, "portfolio", mode=mode),
        mode.name,
        cohorts,
    )
    samples = timeline.samples
    if samples:
        last = samples[-1]
        same = (last.active, last.reserved, last.caps, last.mode, last.cohorts) == (
            sample.active,
            sample.reserved,
            sample.caps,
            sample.mode,
            sample.cohorts,
        )
        if same:
            return  # nothing drawn changed: the step line already covers it
    samples.append(sample)
    if len(samples) > MAX_SAMPLES:
        severity = ctl.policy.data.severity  # the policy's own order of modes
        samples[:] = [_merge(severity, *samples[i : i + 2]) for i in range(0, len(samples), 2)]


def _merge(severity: Mapping[str, int], a: Sample, b: Sample | None = None) -> Sample:
    """Two neighbouring samples as one: the higher heat, the lower caps, the severer mode
    (``severity``: the policy's order of its modes)."""
    if b is None:
        return a
    hot = a if a.active + a.reserved >= b.active + b.reserved else b
    caps = dict(a.caps)
    for rule, limit in b.caps:
        caps[rule] = min(limit, caps.get(rule, limit))
    cohorts: dict[str, tuple[int, float | None]] = {}
    for name, heat, cap in (*a.cohorts, *b.cohorts):
        old = cohorts.get(name)
        if old is None:
            cohorts[name] = (heat, cap)
        else:
            known = [c for c in (old[1], cap) if c is not None]
            cohorts[name] = (max(old[0], heat), min(known) if known else None)
    mode = max(a.mode, b.mode, key=lambda m: severity.get(m, 0))
    return Sample(
        a.at,
        hot.active,
        hot.reserved,
        tuple(sorted(caps.items())),
        mode,
        tuple((n, h, c) for n, (h, c) in sorted(cohorts.items())),
    )


def _tightest(caps: Caps, state: Any, cohort: str, mode: Any) -> float | None:
    values = [cap for _rule, cap in caps.values(state, "cohort", cohort, mode)]
    return min(values) if values else None


def _account(
    timeline: Timeline, rec: Record, index: int, clock: datetime | None, own: bool
) -> None:
    kind = rec.get("kind")
    if kind == "decision":
        if own:
            slim = {k: rec.get(k) for k in _DECISION_KEYS}  # not the context: a long day is big
            timeline.decisions.append(Decision(index, clock, slim))
        _bind(timeline, rec)
        reserved = to_units(rec.get("reserved_risk_abs") or 0.0)
        if reserved or (rec.get("approved") and rec.get("seq") is not None):
            iid = str(rec.get("intent_id"))
            trade = timeline.trades.get(iid)
            if trade is None and reserved:
                trade = timeline.trades[iid] = Trade(
                    iid, str(rec.get("strategy")), str(rec.get("symbol"))
                )
            if trade is not None:
                trade.reserved += reserved
        return
    iid = str(rec.get("intent_id"))
    trade = timeline.trades.get(iid)
    if kind == "fill" and rec.get("status") in ("committed", "late"):
        if trade is None:  # a late fill of a trade that never reserved (a zero approval)
            trade = timeline.trades[iid] = Trade(
                iid, str(rec.get("strategy")), str(rec.get("symbol"))
            )
        committed = to_units(rec.get("committed_risk_abs") or 0.0)
        over = to_units(rec.get("overfill_risk_abs") or 0.0)
        if rec.get("status") == "late":
            trade.late += committed
        else:
            trade.filled += committed - over
            trade.overfill += over
    elif trade is None:
        return
    elif kind == "expire":
        trade.expired += to_units(rec.get("released_risk_abs") or 0.0)
        trade.ended = "expired"
    elif kind == "cancel" and rec.get("status") == "cancelled":
        trade.cancelled += to_units(rec.get("released_risk_abs") or 0.0)
        trade.ended = "cancelled"
    elif kind == "close" and rec.get("status") == "closed":
        trade.released_at_close += to_units(rec.get("released_reserved_risk_abs") or 0.0)
        trade.ended = "closed"


def _bind(timeline: Timeline, rec: Record) -> None:
    """Count what each rule took away: its clips, and the intents it rejected."""
    for clip in rec.get("clips") or ():
        rule = timeline.rules.setdefault(str(clip["rule_id"]), Rule())
        rule.clips += 1
        rule.clipped += to_units(clip["from_risk"]) - to_units(clip["to_risk"])
    if not rec.get("approved"):
        rule = timeline.rules.setdefault(
            str(rec.get("rule_id") or rec.get("decision_code")), Rule()
        )
        rule.rejects += 1
        rule.rejected += to_units(rec.get("requested_risk_abs") or 0.0)


def units(value: int) -> float:
    """Micro-units as account currency (for drawing only)."""
    return value / _SCALE


__all__ = [
    "MAX_COHORTS",
    "OTHER",
    "Decision",
    "Hottest",
    "Rule",
    "Sample",
    "Timeline",
    "Trade",
    "hottest",
    "simulate",
    "units",
]
