"""The core's state, what it reads, and the plumbing its event steps share.

:class:`Kernel` holds the policy in force, the state and the book, the event
counter and the memoised envelope. The parts of the core that apply events
(:mod:`.allocation`: intents; :mod:`.lifecycle`: fills, cancels, closes;
:mod:`.latching`: latch resets; :mod:`.modes`: equity, modes, ticks, policies) are
handed the kernel; :class:`~.core.ControlCore` composes them and is the only
dispatcher. A step starts one way, :meth:`Kernel.begin` (a :class:`Step`: its
number, its time, the records and logs so far, the clock moved), and ends one way,
:meth:`Kernel.finish` (latches and the mode follow the event).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from ..diagnostics import suggest
from ..engine.contracts import AllocationDecision, PortfolioConstraintEnvelope, from_units
from ..engine.policy import ModeInfo, Policy
from .book import Book, Trade
from .days import Days
from .events import EventError, Record
from .locks import Locks
from .records import lifecycle_record
from .state import PortfolioState
from .windows import Windows

# The `logging` module's level numbers: the core names the level of a teaching line and
# the shell logs it (the core itself never logs).
INFO, WARNING, ERROR = 20, 30, 40

Log = tuple[int, str]


class Outputs(NamedTuple):
    """What one event produced besides the new state."""

    records: tuple[Record, ...] | list[Record]  # in order; the event's own record last
    logs: tuple[Log, ...] | list[Log]  # teaching lines (level, text)
    broadcast: PortfolioConstraintEnvelope | None  # push to every subscriber
    decision: AllocationDecision | None = None  # an intent's, when asked for


NOTHING = Outputs((), (), None, None)
_new = tuple.__new__


def outputs(
    records: tuple[Record, ...] | list[Record],
    logs: tuple[Log, ...] | list[Log],
    broadcast: PortfolioConstraintEnvelope | None = None,
    decision: AllocationDecision | None = None,
) -> Outputs:
    """An :class:`Outputs` without the NamedTuple's Python-level ``__new__`` (hot path)."""
    out: Outputs = _new(Outputs, (records, logs, broadcast, decision))
    return out


class Ruling(NamedTuple):
    """What a refusal found: the answer to an event refused (never journaled), or None;
    and its finding (a status, a reused id's message), which the step takes over."""

    refused: Outputs | None
    finding: str | None


ACCEPT = Ruling(None, None)


def admitted(ahead: str | None) -> None:
    """Raise the shell's admission refusal (``ahead``: a timestamp too far ahead of its
    clock) for an event that has no refusal record of its own."""
    if ahead is not None:
        raise EventError(ahead)


class Options(NamedTuple):
    """How a step is applied: ``teach`` (teaching lines), ``records`` (a fill's, cancel's or
    close's record), ``decision_record`` (an intent's record), ``decide`` (its
    AllocationDecision; a replay keeps the records only)."""

    teach: bool = False
    records: bool = True
    decision_record: bool = True
    decide: bool = False


class Step(NamedTuple):
    """One event being applied: its number, its time, whether to teach, the records and
    logs so far (the lists the step appends to; what the clock's move caused comes
    first), and whether that move released anything (a finding made before it may no
    longer hold). Built by :meth:`Kernel.begin` (or :func:`new_step` for an unnumbered one)."""

    seq: int
    ts: datetime | None
    teach: bool
    records: list[Record]
    logs: list[Log]
    moved: bool


def new_step(seq: int, ts: datetime | None, teach: bool) -> Step:
    """A step with nothing in it yet (``seq`` -1: not numbered)."""
    made: Step = _new(Step, (seq, ts, teach, [], [], False))
    return made


class Kernel:
    """State, reading and plumbing of the control core (see :class:`~.core.ControlCore`).

    ``seq`` numbers events: every event applied takes the next number (an opening
    policy load counts as event 0, so the first event after it is 1).
    """

    def __init__(self, policy: Policy, *, seq: int = 1) -> None:
        self.policy = policy
        self.state = PortfolioState()
        self.book = Book(self.state)
        self.days = Days(policy.calendar)  # the trading day the event clock is in
        self.windows = Windows(policy.windows, self.state)  # rolling counts on event time
        self.locks = Locks(policy.locks, self.windows, policy.calendar, policy.timezone)
        self.latches_moved = False  # a rollover cleared latches: the mode may move with them
        self.seq = seq
        self.last_mode: str = policy.mode_of(self.state).name
        self.policy_ref: dict[str, Any] = policy_ref_of(policy)  # records carry it
        self.ttl = ttl_of(policy)
        self._env_cache: tuple[int, Policy, PortfolioConstraintEnvelope] | None = None
        self._iso_ts: datetime | None = None  # the last timestamp formatted, and its text
        self._iso = ""

    # --- reading ---------------------------------------------------------------------------
    @property
    def clock(self) -> datetime | None:
        return self.book.clock

    def check_mode(self, mode: str | None) -> None:
        """An override must name a mode the policy declares (or None, which clears it): an
        undeclared `risk_off` would broadcast risk_off while the chain approved new risk."""
        declared = self.policy.declared_modes
        if mode is not None and mode not in declared:
            hint = suggest(mode, declared)
            raise EventError(
                f"mode {mode!r} is not declared by policy {self.policy.name} "
                f"(it declares {', '.join(declared)}{'; ' + hint if hint else ''})"
            )

    def mode_info(self) -> ModeInfo:
        return self.policy.mode_of(self.state)

    def envelope(self) -> PortfolioConstraintEnvelope:
        """The current envelope (memoised until the state or the policy changes)."""
        state, policy = self.state, self.policy
        cache = self._env_cache
        if cache is not None and cache[0] == state.version and cache[1] is policy:
            return cache[2]
        env = policy.envelope(state)
        self._env_cache = (state.version, policy, env)
        return env

    def portfolio_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of everything: equity, mode, aggregates, reservations."""
        state = self.state
        mode = self.mode_info()
        clock = self.book.clock

        def table(buckets: Mapping[str, Any]) -> dict[str, Any]:
            # a bucket equal to a fresh one (not yet dropped) shows as absent, as once dropped
            return {k: buckets[k].totals() for k in sorted(buckets) if not buckets[k].is_fresh()}

        return {
            "policy": dict(self.policy_ref),
            "clock": clock.isoformat() if clock else None,
            "equity": state.equity,
            "peak_equity": state.peak_equity,
            "drawdown": state.drawdown,
            "mode": mode.name,
            "mode_source": mode.source,
            "mode_reason": mode.reason,
            "mode_override": state.mode_override,
            "totals": state.totals(),
            "strategies": table(state.strategies),
            "symbols": table(state.symbols),
            "cohorts": table(state.cohorts),
            "latches": {name: dict(state.latch_info[name]) for name in sorted(state.latches)},
            # a scope whose buckets were all dropped (fresh) shows nothing, as a new one
            "scopes": {n: t for n in sorted(state.scopes) if (t := table(state.scopes[n]))},
            "trades": [t.as_dict() for t in self.book.live()],
            "envelope": self.envelope().model_dump(mode="json"),
            "seq": self.seq,
        }

    # --- plumbing: how a step starts and ends -------------------------------------------
    def begin(self, ts: datetime | None, teach: bool) -> Step:
        """Number the event and move the clock to ``ts`` (what it passes happens first:
        expiries, then a trading-day rollover, their records and logs in the step)."""
        seq = self.seq
        self.seq = seq + 1
        if ts is None:  # (new_step, inline)
            fresh: Step = _new(Step, (seq, None, teach, [], [], False))
            return fresh
        more, more_logs = self._clock_to(ts, seq, teach)
        made: Step = _new(Step, (seq, ts, teach, more or [], more_logs or [], bool(more)))
        return made

    def finish(
        self,
        step: Step,
        broadcast: PortfolioConstraintEnvelope | None = None,
        *,
        own: bool = True,
        decision: AllocationDecision | None = None,
    ) -> Outputs:
        """The step's outputs once the event is applied: the latches whose `when` now holds
        are set (their records go just before the event's own record, which stays last
        when ``own``), and the envelope is broadcast when the mode moved (a mode may read
        latches)."""
        out = outputs(step.records, step.logs, broadcast, decision)
        policy = self.policy
        state = self.state
        if not policy.latch_names or not state.equity_seen:
            # Before the portfolio has an equity the day's values are placeholders (0): a
            # loss latch would trip on them.
            return out
        met = policy.latches_met(state, skip=state.latches)
        if not met and not self.latches_moved:
            return out
        self.latches_moved = False
        seq, ts, teach = step.seq, step.ts, step.teach
        if met:
            records, logs = step.records, step.logs
            at = len(records) - 1 if own and records else len(records)
            records[at:at] = [self._set_latch(n, why, seq, ts, logs, teach) for n, why in met]
        env, push = self.after_mode_change(False)  # a mode may read the latches that moved
        if push:
            return outputs(out.records, out.logs, env, decision)
        return out

    def _set_latch(
        self,
        name: str,
        error: str | None,
        seq: int,
        ts: datetime | None,
        logs: list[Log],
        teach: bool,
    ) -> Record:
        """Latch ``name``: it stays set until its rollover or a reset. Its record."""
        spec = self.policy.checked.spec.latches[name]
        state = self.state
        when = ts and self.iso_of(ts)
        state.latches[name] = True
        state.latch_info[name] = {"seq": seq, "ts": when, "error": error}
        state.version += 1
        rec: Record = {
            "kind": "latch",
            "seq": seq,
            "ts": when,
            "name": name,
            "status": "set",
            "when": spec.when.text,
            "until": spec.until,
        }
        if error is not None:
            rec["error"] = error  # a `when` that cannot be evaluated latches (fail closed)
        if teach:
            why = f"evaluation failed: {error}" if error else spec.when.text
            logs.append((WARNING, f"[RISK:LATCH] {name} → SET ({why}; until {spec.until})"))
        return rec

    def skip(self) -> int:
        """Count an event without applying it (a what-if replay keeps its own policy)."""
        seq = self.seq
        self.seq = seq + 1
        return seq

    def iso_of(self, ts: datetime) -> str:
        if ts is not self._iso_ts:
            self._iso = ts.isoformat()
            self._iso_ts = ts
        return self._iso

    def _clock_to(
        self, ts: datetime, seq: int, teach: bool
    ) -> tuple[list[Record] | None, list[Log] | None]:
        """Move the event clock to ``ts`` (never back): release the reservations whose
        deadline it reaches, then start a new trading day if it crossed a rollover. Returns
        their records and logs, or (None, None) when nothing happened (the common case)."""
        book = self.book
        expired = book.advance(ts)
        records: list[Record] | None = None
        logs: list[Log] | None = None
        if expired:
            records, logs = [], []
            self._expire(expired, seq, records, logs, teach)
        clock = book.clock
        windows = self.windows
        if windows.logs and clock is not None:
            windows.advance(clock)
        if self.locks.heap and clock is not None:
            self.locks.advance(clock)
        days = self.days
        if clock is not None and (days.check is None or clock >= days.check):
            crossed = days.crossed(clock)
            if crossed is not None and crossed[0] is not None:
                if records is None or logs is None:
                    records, logs = [], []
                self._start_day(crossed[0], crossed[1], seq, records, logs, teach)
        return records, logs

    def _start_day(
        self,
        previous: date,
        day: date,
        seq: int,
        records: list[Record],
        logs: list[Log],
        teach: bool,
    ) -> None:
        """The rollover into ``day``: the day's starting equity is the equity in force, the
        realized P&L and loss streaks of every bucket start again from zero."""
        state = self.state
        realized = state.day_realized_pnl
        state.start_day()
        self.windows.new_day()  # daily counters start again
        latches = self.policy.checked.spec.latches
        cleared = [n for n in state.latches if n in latches and latches[n].until == "rollover"]
        for name in cleared:
            state.clear_latch(name)
        self.latches_moved = self.latches_moved or bool(cleared)
        rec: Record = {
            "kind": "rollover",
            "seq": seq,
            "day": day.isoformat(),
            "previous_day": previous.isoformat(),
            "previous_realized_pnl": realized,
            "day_start_equity": state.day_start_equity,
        }
        if cleared:
            rec["latches_cleared"] = cleared
        records.append(rec)
        if teach:
            logs.append(
                (
                    INFO,
                    f"[RISK:DAY] trading day {day.isoformat()} starts "
                    f"(day_start_equity={state.day_start_equity}; realized P&L of "
                    f"{previous.isoformat()}: {realized})",
                )
            )

    def _expire(
        self, expired: list[Trade], seq: int, records: list[Record], logs: list[Log], teach: bool
    ) -> None:
        for trade in expired:
            rec = lifecycle_record("expire", seq, trade, trade.intent_id, self.state)
            rec["released_risk_abs"] = from_units(max(0, trade.approved_units - trade.filled_units))
            rec["deadline"] = trade.expires.isoformat() if trade.expires else None
            if teach:
                logs.append(
                    (
                        INFO,
                        f"[RISK:RESERVATION] {trade.strategy} {trade.symbol} {trade.intent_id} "
                        f"expired at {rec['deadline']} → RELEASED {rec['released_risk_abs']}",
                    )
                )
            records.append(rec)

    def after_mode_change(self, force: bool) -> tuple[PortfolioConstraintEnvelope, bool]:
        """The envelope now, and whether subscribers must get it."""
        env = self.envelope()
        mode = self.mode_info().name
        if force or mode != self.last_mode:
            self.last_mode = mode
            return env, True
        return env, False


def policy_ref_of(policy: Policy) -> dict[str, Any]:
    return {"name": policy.name, "version": policy.version, "hash": policy.content_hash}


def ttl_of(policy: Policy) -> timedelta | None:
    ttl = policy.reservation_ttl_sec
    return None if ttl is None else timedelta(seconds=ttl)


__all__ = [
    "ACCEPT",
    "ERROR",
    "INFO",
    "NOTHING",
    "WARNING",
    "Kernel",
    "Log",
    "Options",
    "Outputs",
    "Ruling",
    "Step",
    "admitted",
    "new_step",
    "outputs",
    "policy_ref_of",
    "ttl_of",
]
