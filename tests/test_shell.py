"""The one shell protocol (control/shell.py): admit -> refuse -> journal -> apply.

The controller and the Temporal workflow both go through it; these tests drive it
directly over a pure core, with a list for the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policy_engine.control.core import ControlCore
from policy_engine.control.events import (
    CancelEvent,
    EquityEvent,
    EventError,
    FillEvent,
    FillUpdate,
    IntentEvent,
    TickEvent,
    parse_intent,
)
from policy_engine.control.shell import Shell
from policy_engine.engine.policy import load_policy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICY = Path(__file__).resolve().parent.parent / "policies" / "portfolio.yaml"


class Journal:
    """A journal that also notes the event counter of the core when each line is written."""

    def __init__(self, core: ControlCore) -> None:
        self.core = core
        self.lines: list[tuple[int, dict[str, Any]]] = []

    def write(self, event: dict[str, Any]) -> None:
        self.lines.append((self.core.seq, event))


def _setup() -> tuple[ControlCore, Journal, Shell]:
    core = ControlCore(load_policy(POLICY))
    core.apply(EquityEvent(100_000, None, None))
    journal = Journal(core)
    return core, journal, Shell(core, journal)


def _intent(iid: str, at: timedelta = timedelta(0)) -> IntentEvent:
    raw = {
        "intent_id": iid,
        "strategy": "BREAKOUT",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": 500,
        "timestamp": (T0 + at).isoformat(),
    }
    return IntentEvent(parse_intent(raw))


def test_an_accepted_event_is_journaled_before_it_is_applied_a_refused_one_never() -> None:
    core, journal, shell = _setup()
    out, accepted = shell.submit(_intent("a"))
    assert accepted and out.decision is not None and out.decision.approved
    # written while the next number was still 2: before the core applied it
    assert journal.lines == [(2, _intent("a").journal())]
    snap = core.snapshot()
    for refused in (_intent("a"), CancelEvent("nobody", None)):  # a reused id; no such trade
        out, accepted = shell.submit(refused)
        assert not accepted and out.records[-1]["seq"] is None
    assert len(journal.lines) == 1 and core.snapshot() == snap  # nothing written, nothing moved


def test_an_event_too_far_ahead_is_answered_or_raises_and_changes_nothing() -> None:
    core, journal, _ = _setup()
    shell = Shell(core, journal, lambda ts: None if ts is None or ts <= T0 else "too far ahead")
    out, accepted = shell.submit(_intent("late", timedelta(hours=1)))
    assert not accepted and out.decision is not None
    assert out.decision.decision_code == "rejected_clock_skew"
    with pytest.raises(EventError, match="too far ahead"):
        shell.submit(TickEvent(T0 + timedelta(hours=1)))
    assert journal.lines == [] and core.seq == 2


def test_a_finding_made_before_the_clock_moved_is_found_again_after_it() -> None:
    """The refusal finds the fill's trade live (``commit``); the fill's own timestamp passes
    the reservation's deadline, so the step must find it again: the trade expired first and
    the fill is absorbed late, exactly as a replay (no refusal at all) decides it."""
    core, journal, shell = _setup()
    shell.submit(_intent("a"))
    fill = FillEvent(
        FillUpdate(
            intent_id="a", fill_id="f", filled_risk_abs=200, timestamp=T0 + timedelta(hours=2)
        )
    )
    assert core.refusal(fill).finding == "commit"  # before the clock moves
    out, accepted = shell.submit(fill)
    kinds = [(r["kind"], r.get("status")) for r in out.records]
    assert accepted and kinds == [("expire", None), ("fill", "late")]
    assert out.records[-1]["late_after"] == "expired"
    twin = ControlCore(load_policy(POLICY))
    twin.apply(EquityEvent(100_000, None, None))
    replayed = [twin.apply(event).records for _seq, event in journal.lines]
    assert replayed[-1] == out.records and twin.snapshot() == core.snapshot()


def test_the_wall_clock_admission_agrees_with_the_exact_comparison() -> None:
    """With the default wall clock, admission compares POSIX seconds first (a fast path) and
    the aware datetimes near the bound: far behind, just inside and far ahead of the bound
    (by minutes, so the instant the clock is read does not matter) answer as before."""
    from policy_engine.control.admission import Admission

    admission = Admission(max_skew=timedelta(minutes=5))
    now = datetime.now(UTC)
    assert admission.ahead(now - timedelta(days=400)) is None
    assert admission.ahead(now + timedelta(minutes=3)) is None
    message = admission.ahead(now + timedelta(minutes=7))
    assert message is not None and "ahead of the clock" in message
    # A skew smaller than the fast path's margin: only the exact comparison decides.
    tight = Admission(max_skew=timedelta(microseconds=100))
    assert tight.ahead(now - timedelta(minutes=1)) is None
    assert tight.ahead(now + timedelta(minutes=1)) is not None
