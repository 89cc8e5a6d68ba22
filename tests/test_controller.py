"""The portfolio control plane on the bundled policies: the seeds' expected behaviour,
reservations, fills, modes, envelopes, reload, telemetry and thread safety."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine import (
    AllocationDecision,
    PortfolioConstraintEnvelope,
    PortfolioController,
    PortfolioIntent,
)
from policy_engine.cli import cli
from policy_engine.control import book as book_module
from policy_engine.control.core import INVALID_INTENT_CODE, ControlCore
from policy_engine.control.events import EventError, IntentEvent, canonical
from policy_engine.control.journal import read_events
from policy_engine.control.records import DECISION_KEYS
from policy_engine.control.watcher import PolicyWatcher

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
STRATEGY_LIMITS = ROOT / "policies" / "strategy_limits.yaml"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


_counter = iter(range(1_000_000))


def intent(
    strategy: str = "SCALPER",
    symbol: str = "BTC-USD",
    risk: float = 100,
    *,
    side: str = "long",
    t: float = 0,
    intent_id: str | None = None,
    **extra: Any,
) -> PortfolioIntent:
    return PortfolioIntent(
        intent_id=intent_id or f"{strategy}-{symbol}-{next(_counter)}",
        strategy=strategy,
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        requested_risk_abs=risk,
        timestamp=at(t),
        **extra,
    )


def controller(path: Path = PORTFOLIO, equity: float = 100_000, **kw: Any) -> PortfolioController:
    return PortfolioController(path, equity=equity, **kw)


def fill(ctl: PortfolioController, iid: str, fid: str, risk: float, t: float = 1) -> dict[str, Any]:
    return ctl.on_fill_update(
        {"intent_id": iid, "fill_id": fid, "filled_risk_abs": risk, "timestamp": at(t)}
    )


# --- the first seed: strategy max_trades ---------------------------------------------------


def test_seed_strategy_limits_first_two_scalpers_and_one_momentum(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only the first 2 SCALPER and the first MOMENTUM intents are approved; the rest are
    blocked with the teaching line; other strategies are unaffected; a close frees a slot."""
    ctl = controller(STRATEGY_LIMITS)
    caplog.set_level(logging.INFO, logger="policy_engine")
    stream = [intent("SCALPER", t=i) for i in range(4)] + [
        intent("MOMENTUM", t=5 + i) for i in range(3)
    ]
    decisions = [ctl.request_allocation(i) for i in stream]
    assert [d.approved for d in decisions] == [True, True, False, False, True, False, False]
    assert decisions[2].decision_code == "rejected_strategy_limit"
    assert decisions[2].rule_id == "strategy-max-trades"
    assert decisions[2].context["strategy.active_trades"] == 2
    assert decisions[2].context["strategy.max_trades"] == 2
    blocked = [r.getMessage() for r in caplog.records if "BLOCKED" in r.getMessage()]
    assert blocked[0] == "[RISK:STRATEGY] SCALPER BTC-USD active=2 max=2 → BLOCKED (limit reached)"
    assert "[RISK:STRATEGY] MOMENTUM BTC-USD active=1 max=1 → BLOCKED (limit reached)" in blocked
    # Every teaching line carries the category, the counts and the decision (seed 000).
    allowed = [r.getMessage() for r in caplog.records if "→ ALLOWED" in r.getMessage()]
    assert allowed[:2] == [
        "[RISK:STRATEGY] SCALPER BTC-USD active=0 max=2 → ALLOWED",
        "[RISK:STRATEGY] SCALPER BTC-USD active=1 max=2 → ALLOWED",
    ]
    # Exits are never blocked by entry limits: with both SCALPER slots taken, a flat
    # SCALPER intent is approved (and takes no slot).
    exit_ = ctl.request_allocation(intent("SCALPER", side="flat", t=9))
    assert exit_.approved and exit_.rule_id == "risk-reducing-allowed"
    # A close frees the slot: the next SCALPER trades again.
    rec = ctl.close_position(decisions[0].intent_id, at(10))
    assert rec["status"] == "closed"
    assert ctl.request_allocation(intent("SCALPER", t=11)).approved
    assert not ctl.request_allocation(intent("SCALPER", t=12)).approved
    state = ctl.get_portfolio_state()
    assert state["strategies"]["SCALPER"]["active_trades"] == 2
    assert state["strategies"]["MOMENTUM"]["active_trades"] == 1


def test_reload_switches_a_strategy_off_and_keeps_state(tmp_path: Path) -> None:
    """Editing the YAML to disable a strategy takes effect on reload; the live state and
    its reservations survive; every decision carries the version that made it."""
    path = tmp_path / "limits.yaml"
    text = STRATEGY_LIMITS.read_text()
    path.write_text(text)
    ctl = controller(path)
    first = ctl.request_allocation(intent("SCALPER"))
    assert first.approved and first.policy.version == 2
    path.write_text(
        text.replace("version: 2", "version: 3").replace(
            "SCALPER: {enabled: true", "SCALPER: {enabled: false"
        )
    )
    rec = ctl.reload(path)
    assert rec["ok"] and rec["policy"]["version"] == 3 and rec["previous"]["version"] == 2
    off = ctl.request_allocation(intent("SCALPER", t=1))
    assert off.decision_code == "rejected_strategy_disabled"
    assert off.policy.version == 3
    assert off.reasons[0] == "strategy-enabled: strategy SCALPER is disabled"
    state = ctl.get_portfolio_state()
    assert state["strategies"]["SCALPER"]["active_trades"] == 1
    assert [t["intent_id"] for t in state["trades"]] == [first.intent_id]
    assert ctl.request_allocation(intent("MOMENTUM", t=2)).approved


def test_reload_of_a_broken_file_is_refused_and_the_old_policy_stays(tmp_path: Path) -> None:
    """A file that fails to load is refused with the error; the old policy stays in force."""
    path = tmp_path / "limits.yaml"
    path.write_text(STRATEGY_LIMITS.read_text())
    ctl = controller(path)
    old = ctl.policy
    path.write_text(STRATEGY_LIMITS.read_text().replace("strategy.enabled", "strategy.enabld"))
    rec = ctl.reload(path)
    assert rec["ok"] is False
    assert "enabld" in rec["error"]
    assert ctl.policy is old
    assert ctl.request_allocation(intent("SCALPER")).approved
    missing = ctl.reload(tmp_path / "nope.yaml")
    assert missing["ok"] is False and ctl.policy is old


def test_watcher_poll_reloads_on_change_and_reports_failures(tmp_path: Path) -> None:
    """`PolicyWatcher.poll` reloads when the file's content changes, ignores touches with
    the same content, and reports a broken edit without dropping the old policy."""
    path = tmp_path / "limits.yaml"
    text = STRATEGY_LIMITS.read_text()
    path.write_text(text)
    ctl = controller(path)
    seen: list[dict[str, Any]] = []
    watcher = PolicyWatcher(ctl, path, on_reload=seen.append)
    assert watcher.poll() is None
    path.write_text(
        text.replace("SCALPER: {enabled: true", "SCALPER: {enabled: false").replace(
            "version: 2", "version: 3"
        )
    )
    rec = watcher.poll()
    assert rec is not None and rec["ok"]
    assert ctl.request_allocation(intent("SCALPER")).decision_code == "rejected_strategy_disabled"
    assert watcher.poll() is None  # unchanged since
    good = ctl.policy
    path.write_text("rules: [")
    bad = watcher.poll()
    assert bad is not None and bad["ok"] is False and ctl.policy is good
    assert seen == [rec, bad]


def test_watcher_sees_a_same_size_rewrite_with_the_same_mtime(tmp_path: Path) -> None:
    """On a filesystem with coarse timestamps a rewrite can keep both the size and the
    modification time: the watcher compares content, so it still reloads."""
    path = tmp_path / "limits.yaml"
    text = STRATEGY_LIMITS.read_text()
    path.write_text(text)
    before = os.stat(path)
    ctl = controller(path)
    watcher = PolicyWatcher(ctl, path)
    # "true" -> "false" adds a byte; one blank line less takes it away: the same size.
    edited = (
        text.replace("SCALPER: {enabled: true", "SCALPER: {enabled: false")
        .replace("version: 2", "version: 3")
        .replace("\n\n", "\n", 1)
    )
    assert len(edited.encode()) == before.st_size
    path.write_text(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    rec = watcher.poll()
    assert rec is not None and rec["ok"], rec
    assert ctl.request_allocation(intent("SCALPER")).decision_code == "rejected_strategy_disabled"


def test_watcher_thread_applies_an_edit_in_a_running_loop(tmp_path: Path) -> None:
    """The background watcher picks up an edit by itself (waits on an event, no sleeps)."""
    path = tmp_path / "limits.yaml"
    text = STRATEGY_LIMITS.read_text()
    path.write_text(text)
    ctl = controller(path)
    done = threading.Event()
    watcher = PolicyWatcher(ctl, path, interval=0.01, on_reload=lambda rec: done.set())
    watcher.start()
    try:
        path.write_text(
            text.replace("MOMENTUM: {enabled: true", "MOMENTUM: {enabled: false").replace(
                "version: 2", "version: 3"
            )
        )
        assert done.wait(timeout=10)
    finally:
        ctl.close()
    assert ctl.request_allocation(intent("MOMENTUM")).decision_code == "rejected_strategy_disabled"


# --- the second seed: portfolio rules ------------------------------------------------------


def test_btc_and_eth_together_exceed_the_heat_cap_second_is_clipped_with_numbers() -> None:
    """BTC and ETH both ask for long risk; together they exceed portfolio heat, so ETH is
    clipped to the headroom and a third request is rejected, each with its numbers."""
    ctl = controller(equity=30_000)  # heat cap 6% of 30k = 1800
    btc = ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1200))
    eth = ctl.request_allocation(intent("MOMENTUM", "ETH-USD", 1000))
    assert btc.decision_code == "approved_full"
    assert eth.decision_code == "approved_clipped"
    assert eth.approved_risk_abs == 600.0
    assert [(c.rule_id, c.from_risk, c.to_risk) for c in eth.clips] == [
        ("portfolio-heat", 1000.0, 600.0)
    ]
    assert eth.context["portfolio.heat"] == 1200.0
    assert eth.context["portfolio.equity"] == 30_000
    assert eth.headroom == pytest.approx(600.0)
    third = ctl.request_allocation(intent("BREAKOUT", "SOL-USD", 100))
    assert third.decision_code == "rejected_heat"
    assert third.context["portfolio.heat"] == 1800.0
    assert ctl.get_portfolio_state()["totals"]["heat"] == 1800.0


def test_three_symbols_of_one_cohort_hit_the_cohort_cap() -> None:
    """BTC, ETH and SOL share cohort L1 (cap 2500): the third is clipped, a fourth rejected."""
    ctl = controller()
    assert ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1200)).approved
    assert ctl.request_allocation(intent("BREAKOUT", "ETH-USD", 1000)).approved
    sol = ctl.request_allocation(intent("BREAKOUT", "SOL-USD", 800))
    assert sol.decision_code == "approved_clipped" and sol.approved_risk_abs == 300.0
    assert sol.rule_id == "cohort-cap" and sol.context["cohort.heat"] == 2200.0
    more = ctl.request_allocation(intent("MOMENTUM", "SOL-USD", 100))
    assert more.decision_code == "rejected_cohort_cap"
    assert more.reasons[0] == "cohort-cap: cohort L1 risk capped at 2500 (in use 2500)"
    other = ctl.request_allocation(intent("MOMENTUM", "AVAX-USD", 100))
    assert other.approved  # another cohort is unaffected
    assert ctl.get_portfolio_state()["cohorts"]["L1"]["heat"] == 2500.0


def test_drawdown_moves_to_defensive_and_tightens_every_cap() -> None:
    """Equity falling 6% from its peak selects defensive: every cap is halved, the envelope
    says so and is pushed to subscribers, and the decisions record the drawdown source."""
    ctl = controller()
    got: list[PortfolioConstraintEnvelope] = []
    ctl.subscribe(got.append)
    normal = got[-1]
    assert normal.portfolio_mode == "normal" and normal.symbol_max_risk_abs == 1500
    assert ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1000)).approved
    ctl.update_equity(97_000, at(1))
    assert len(got) == 1  # still normal: no broadcast
    rec = ctl.update_equity(94_000, at(2))
    assert rec["mode_before"] == "normal" and rec["mode"] == "defensive"
    assert len(got) == 2
    env = got[-1]
    assert env.portfolio_mode == "defensive"
    assert env.symbol_max_risk_abs == 750
    assert env.size_multiplier_cap == 0.5
    assert env.max_new_risk_abs == pytest.approx(0.06 * 94_000 * 0.5 - 1000)
    symbol = ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 500, t=3))
    assert symbol.decision_code == "rejected_symbol_cap"
    assert symbol.context["mode.risk_multiplier"] == 0.5
    assert symbol.mode == "defensive" and symbol.mode_source == "drawdown"
    assert symbol.mode_reason == "portfolio.drawdown >= 5%"
    cohort = ctl.request_allocation(intent("BREAKOUT", "ETH-USD", 500, t=4))
    assert cohort.decision_code == "approved_clipped" and cohort.approved_risk_abs == 250
    state = ctl.get_portfolio_state()
    assert state["mode"] == "defensive" and state["peak_equity"] == 100_000
    assert state["drawdown"] == pytest.approx(0.06)


def test_risk_off_override_reaches_every_subscriber_and_flattening_is_still_approved() -> None:
    """A risk_off override is pushed to every subscriber before the call returns; new risk
    is refused, flattening and reduce-only intents are approved; clearing restores normal."""
    ctl = controller()
    opened = ctl.request_allocation(intent("BREAKOUT", "LINK-USD", 500))
    inboxes: dict[str, list[PortfolioConstraintEnvelope]] = {s: [] for s in ("BTC", "ETH", "LINK")}
    for box in inboxes.values():
        ctl.subscribe(box.append)

    def check_all_risk_off(env: PortfolioConstraintEnvelope) -> None:
        assert all(box[-1].portfolio_mode == "risk_off" for box in inboxes.values())

    env = ctl.set_portfolio_mode("risk_off", "judge: derisk", at(1))
    check_all_risk_off(env)
    assert env.force_flatten_only and env.max_new_risk_abs == 0.0
    new = ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 100, t=2))
    assert new.decision_code == "rejected_risk_off"
    assert new.mode == "risk_off" and new.mode_source == "override"
    assert new.mode_reason == "judge: derisk"
    flat = ctl.request_allocation(intent("BREAKOUT", "LINK-USD", 500, side="flat", t=3))
    assert flat.approved and flat.rule_id == "risk-reducing-allowed"
    reduce = ctl.request_allocation(intent("SCALPER", "LINK-USD", 200, reduce_only=True, t=4))
    assert reduce.approved
    # Risk-reducing intents reserve nothing and take no slot.
    assert ctl.get_portfolio_state()["totals"]["active_trades"] == 1
    assert ctl.close_position(opened.intent_id, at(5))["status"] == "closed"
    cleared = ctl.set_portfolio_mode(None, "judge: calm", at(6))
    assert cleared.portfolio_mode == "normal"
    assert all(box[-1].portfolio_mode == "normal" for box in inboxes.values())
    assert ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 100, t=7)).approved


def test_the_stricter_of_drawdown_and_override_applies() -> None:
    """A defensive override under a risk_off drawdown leaves risk_off from the drawdown."""
    ctl = controller()
    ctl.update_equity(89_000, at(1))
    ctl.set_portfolio_mode("defensive", "judge", at(2))
    d = ctl.request_allocation(intent(t=3))
    assert d.mode == "risk_off" and d.mode_source == "drawdown"
    assert d.decision_code == "rejected_risk_off"
    ctl.update_equity(100_000, at(4))
    d2 = ctl.request_allocation(intent("BREAKOUT", "DOGE-USD", 2000, t=5))
    assert d2.mode == "defensive" and d2.mode_source == "override" and d2.mode_reason == "judge"
    assert d2.approved_risk_abs == 750
    with pytest.raises(EventError):
        ctl.set_portfolio_mode("panic", "?")


def test_stale_reservation_expires_at_exactly_the_ttl_and_frees_heat() -> None:
    """A reservation made at T is live until T+ttl (exclusive): an event stamped
    T+ttl-1µs still sees it, one stamped T+ttl sees it expired and its heat freed."""
    ctl = controller(equity=20_000)  # heat cap 1200
    ttl = ctl.policy.reservation_ttl_sec
    assert ttl == 300
    first = ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1200, t=0))
    assert first.approved
    blocked = ctl.request_allocation(intent("BREAKOUT", "DOGE-USD", 100, t=ttl - 0.000001))
    assert blocked.decision_code == "rejected_heat"
    records: list[dict[str, Any]] = ctl.advance_time(at(ttl - 0.000001))
    assert records == []
    expired = ctl.advance_time(at(ttl))
    assert [r["intent_id"] for r in expired] == [first.intent_id]
    assert expired[0]["released_risk_abs"] == 1200.0
    assert expired[0]["deadline"] == at(ttl).isoformat()
    assert ctl.get_portfolio_state()["totals"]["heat"] == 0.0
    later = ctl.request_allocation(intent("BREAKOUT", "DOGE-USD", 100, t=ttl))
    assert later.approved
    # A fill after expiry is real exposure at the venue: absorbed as an orphan position,
    # flagged, counted against every cap until it is closed.
    late_fill = fill(ctl, first.intent_id, "f-late", 1200, t=ttl + 1)
    assert late_fill["status"] == "late" and late_fill["late_after"] == "expired"
    assert late_fill["committed_risk_abs"] == 1200.0
    totals = ctl.get_portfolio_state()["totals"]
    assert (totals["active_risk"], totals["open_positions"]) == (1200.0, 1)
    assert ctl.close_position(first.intent_id, at(ttl + 2))["released_active_risk_abs"] == 1200.0


def test_expiry_happens_before_the_event_that_crosses_the_deadline() -> None:
    """An intent stamped at the deadline is decided against the state with the stale
    reservation already released (the logical clock never reads the wall clock)."""
    ctl = controller(equity=20_000)
    ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1200, t=0))
    d = ctl.request_allocation(intent("BREAKOUT", "ETH-USD", 1200, t=300))
    assert d.decision_code == "approved_full"
    # An event with an older timestamp does not move the clock back.
    ctl.advance_time(at(10))
    assert ctl.get_portfolio_state()["clock"] == at(300).isoformat()


def test_partial_fills_duplicates_unknown_and_overfill() -> None:
    """Partial fills commit only their increment, a repeated fill id is a no-op, a fill for
    an unknown intent is reported and not absorbed, a fill beyond the reservation is flagged."""
    ctl = controller()
    d = ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1000))
    a = fill(ctl, d.intent_id, "f1", 300)
    assert a["status"] == "committed" and a["committed_risk_abs"] == 300.0
    totals = ctl.get_portfolio_state()["totals"]
    assert (totals["active_risk"], totals["reserved_risk"], totals["open_positions"]) == (
        300.0,
        700.0,
        1,
    )
    dup = fill(ctl, d.intent_id, "f1", 300)
    assert dup["status"] == "duplicate" and dup["before"] == dup["after"]
    fill(ctl, d.intent_id, "f2", 700)
    over = fill(ctl, d.intent_id, "f3", 50)
    assert over["status"] == "committed" and over["overfill_risk_abs"] == 50.0
    totals = ctl.get_portfolio_state()["totals"]
    assert (totals["active_risk"], totals["reserved_risk"]) == (1050.0, 0.0)
    unknown = fill(ctl, "nope", "f9", 10)
    assert unknown["status"] == "unknown" and "not absorbed" in unknown["message"]
    assert unknown["seq"] is None  # nothing changed, nothing journaled
    bad = ctl.on_fill_update({"intent_id": d.intent_id, "fill_id": "f4", "filled_risk_abs": -1})
    assert bad["status"] == "invalid" and "filled_risk_abs" in bad["message"]
    closed = ctl.close_position(d.intent_id, at(2))
    assert closed["released_active_risk_abs"] == 1050.0
    after_close = fill(ctl, d.intent_id, "f5", 10)  # a late fill after the close: real exposure
    assert after_close["status"] == "late" and after_close["late_after"] == "closed"
    assert ctl.close_position(d.intent_id, at(3))["released_active_risk_abs"] == 10.0
    assert ctl.get_portfolio_state()["totals"] == {
        "active_risk": 0.0,
        "reserved_risk": 0.0,
        "heat": 0.0,
        "open_positions": 0,
        "active_trades": 0,
        "long_risk": 0.0,
        "short_risk": 0.0,
        "net_risk": 0.0,
    }


def test_cancel_releases_the_remainder_and_a_partly_filled_trade_stays_open() -> None:
    """Cancelling an unfilled reservation frees its slot; cancelling a partly filled one
    keeps the position (and its slot) until it is closed."""
    ctl = controller(STRATEGY_LIMITS)
    a = ctl.request_allocation(intent("SCALPER", risk=100))
    b = ctl.request_allocation(intent("SCALPER", risk=100))
    assert ctl.cancel_reservation(a.intent_id, at(1))["released_risk_abs"] == 100.0
    fill(ctl, b.intent_id, "fb", 40)
    rec = ctl.cancel_reservation(b.intent_id, at(2))
    assert rec["status"] == "cancelled" and rec["released_risk_abs"] == 60.0
    state = ctl.get_portfolio_state()
    assert state["strategies"]["SCALPER"]["active_trades"] == 1
    assert state["totals"]["active_risk"] == 40.0 and state["totals"]["reserved_risk"] == 0.0
    late = fill(ctl, b.intent_id, "fb2", 10)  # after the cancel: absorbed, flagged
    assert late["status"] == "late" and late["late_after"] == "cancelled"
    assert ctl.cancel_reservation(b.intent_id, at(3))["status"] == "cancelled"
    assert ctl.cancel_reservation("ghost", at(3))["status"] == "unknown"
    assert ctl.close_position(b.intent_id, at(4))["released_active_risk_abs"] == 50.0
    assert ctl.close_position(b.intent_id, at(5))["status"] == "closed"
    assert ctl.close_position("ghost", at(5))["status"] == "unknown"
    assert ctl.get_portfolio_state()["totals"]["active_trades"] == 0


# --- rejected and failed intents leave the state untouched ---------------------------------


def _state_json(ctl: PortfolioController) -> str:
    state = ctl.get_portfolio_state()
    state.pop("seq")
    return canonical(state)


@pytest.mark.parametrize(
    "bad",
    [
        {"intent_id": "x", "strategy": "SCALPER", "symbol": "BTC-USD", "side": "long"},
        {
            "intent_id": "x",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "buy",
            "requested_risk_abs": 1,
            "timestamp": "2026-03-02T14:00:00Z",
        },
        {
            "intent_id": "x",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": float("nan"),
            "timestamp": "2026-03-02T14:00:00Z",
        },
        {
            "intent_id": "x",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 1e400,
            "timestamp": "2026-03-02T14:00:00Z",
        },
        {
            "intent_id": "x",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 1,
            "timestamp": "2026-03-02T14:00:00",
        },
        {
            "intent_id": "x",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": -0.5,
            "timestamp": "2026-03-02T14:00:00Z",
        },
        "not an intent",
        None,
    ],
)
def test_invalid_intents_are_rejected_never_raise_and_change_nothing(bad: Any) -> None:
    """An intent that fails validation gives rejected_invalid_intent with the pydantic
    message; it never raises, never approves and leaves the state untouched."""
    records: list[dict[str, Any]] = []
    ctl = controller(records=records)
    ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 500))
    before = _state_json(ctl)
    records.clear()
    d = ctl.request_allocation(bad)
    assert isinstance(d, AllocationDecision)
    assert not d.approved and d.approved_risk_abs == 0.0
    assert d.decision_code == INVALID_INTENT_CODE
    assert d.reasons and d.reasons[0]
    assert _state_json(ctl) == before
    assert records[-1]["decision_code"] == INVALID_INTENT_CODE
    assert records[-1]["before"] == records[-1]["after"]


def test_rejected_intents_change_nothing_and_duplicates_are_refused() -> None:
    """Policy rejections and a duplicate live intent id leave every aggregate as it was."""
    ctl = controller(STRATEGY_LIMITS)
    first = ctl.request_allocation(intent("SCALPER", intent_id="dup"))
    ctl.request_allocation(intent("SCALPER"))
    before = _state_json(ctl)
    assert ctl.request_allocation(intent("SCALPER")).decision_code == "rejected_strategy_limit"
    assert ctl.request_allocation(intent("UNKNOWN")).decision_code == "rejected_eval_error"
    again = ctl.request_allocation(intent("MOMENTUM", intent_id="dup"))
    assert again.decision_code == "rejected_duplicate_intent"
    assert _state_json(ctl) == before
    ctl.close_position(first.intent_id, at(1))
    # a reused id could pick up the old trade's late fill: refused
    reused = ctl.request_allocation(intent("MOMENTUM", intent_id="dup"))
    assert reused.decision_code == "rejected_duplicate_intent"
    assert "intent ids must be unique" in reused.reasons[0]


def test_the_id_memory_is_a_bounded_window_that_never_forgets_live_or_ended_trades(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reused ids are refused while they name a live trade, a remembered ended trade or one
    of the last SEEN_MEMORY decisions; older ids are forgotten in order (so snapshots stay
    bounded), and a restored core forgets exactly as the original would."""
    monkeypatch.setattr(book_module, "SEEN_MEMORY", 2)
    monkeypatch.setattr(book_module, "ENDED_MEMORY", 4)
    ctl = controller(STRATEGY_LIMITS, clock=None)
    live = ctl.request_allocation(intent("MOMENTUM", intent_id="live"))
    ended = ctl.request_allocation(intent("SCALPER", intent_id="ended"))
    assert live.approved and ended.approved
    ctl.close_position("ended", at(1))
    assert ctl.request_allocation(intent("UNKNOWN", intent_id="r0")).decision_code == (
        "rejected_eval_error"
    )
    for k in range(3):  # three more decisions push `live`, `ended` and `r0` out of the window
        ctl.request_allocation(intent("UNKNOWN", intent_id=f"r{k + 1}"))
    snap = ctl.core.snapshot()
    assert snap["seen"] == ["r2", "r3"]  # in order: the oldest is forgotten first
    twin = ControlCore.restore(snap)
    for core in (ctl.core, twin):
        codes = [
            core.refusal(IntentEvent(intent("SCALPER", intent_id=iid))).refused
            for iid in ("live", "ended", "r3", "r0")
        ]
        assert [
            None if c is None or c.decision is None else c.decision.decision_code for c in codes
        ] == [
            "rejected_duplicate_intent",  # live: always
            "rejected_duplicate_intent",  # ended and remembered: a late fill may still come
            "rejected_duplicate_intent",  # decided within the window
            None,  # forgotten: decided anew
        ]
    for k in range(4, 8):
        ctl.request_allocation(intent("UNKNOWN", intent_id=f"r{k}"))
        twin.apply({"type": "intent", **intent("UNKNOWN", intent_id=f"r{k}").model_dump()})
    assert twin.snapshot() == ctl.core.snapshot()


def test_dict_intents_are_validated_and_decided_like_models() -> None:
    """A valid dict intent is decided exactly like the equivalent PortfolioIntent."""
    a, b = controller(), controller()
    model = intent("BREAKOUT", "ETH-USD", 250.5, intent_id="i1")
    d1 = a.request_allocation(model)
    d2 = b.request_allocation(model.model_dump(mode="json"))
    assert d1.model_dump() == d2.model_dump()


# --- telemetry -----------------------------------------------------------------------------


def test_decision_record_explains_a_clip_by_itself(caplog: pytest.LogCaptureFixture) -> None:
    """The structured record carries code, rule, numbers, clips, mode, policy and the
    aggregates before and after; the log line is the seed's teaching format."""
    records: list[dict[str, Any]] = []
    ctl = controller(equity=30_000, records=records)
    caplog.set_level(logging.INFO, logger="policy_engine")
    ctl.request_allocation(intent("BREAKOUT", "BTC-USD", 1200))
    ctl.request_allocation(intent("MOMENTUM", "ETH-USD", 1000, intent_id="eth"))
    rec = records[-1]
    assert tuple(rec) == DECISION_KEYS
    assert rec["decision_code"] == "approved_clipped" and rec["rule_id"] == "portfolio-heat"
    assert rec["category"] == "HEAT"
    assert rec["requested_risk_abs"] == 1000.0 and rec["approved_risk_abs"] == 600.0
    assert rec["clips"] == [{"rule_id": "portfolio-heat", "from_risk": 1000.0, "to_risk": 600.0}]
    assert rec["context"]["portfolio.heat"] == 1200.0
    assert rec["mode"] == "normal" and rec["mode_source"] == "drawdown"
    assert rec["policy"]["name"] == "portfolio-default" and rec["policy"]["hash"].startswith(
        "sha256:"
    )
    assert rec["before"] == {
        "active_risk": 0.0,
        "reserved_risk": 1200.0,
        "active_trades": 1,
        "open_positions": 0,
    }
    assert rec["after"]["reserved_risk"] == 1800.0 and rec["after"]["active_trades"] == 2
    json.loads(canonical(rec))  # JSON-ready
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("[RISK:HEAT] MOMENTUM ETH-USD")
        and line.endswith("→ CLIPPED (1000 → 600 by portfolio-heat)")
        for line in lines
    )
    assert "[RISK:STRATEGY] BREAKOUT BTC-USD active=0 max=3 → ALLOWED" in lines


def test_fast_approval_record_matches_the_verdict() -> None:
    """The approve-in-full fast path records what the core Verdict says."""
    ctl = controller()
    policy = ctl.policy
    i = intent("BREAKOUT", "AVAX-USD", 321.123456)
    verdict = policy.evaluate(i, ctl.state)
    expected = verdict.decision(policy.envelope(ctl.state))
    got = ctl.request_allocation(i)
    skip = {"constraint_envelope"}
    assert got.model_dump(exclude=skip) == expected.model_dump(exclude=skip)
    assert got.constraint_envelope == policy.envelope(ctl.state)


def test_fast_envelope_matches_the_core_envelope() -> None:
    """The envelope's fast path (per-mode templates) gives exactly the careful one in every mode."""
    ctl = controller()
    policy = ctl.policy
    for k in range(40):
        ctl.update_equity(100_000 - 500 * k, at(k))
        ctl.request_allocation(intent("BREAKOUT", f"S{k}", 10 * k + 1, t=k))
        if k == 30:
            ctl.set_portfolio_mode("risk_off", "x", at(k))
        state = ctl.state
        assert policy.envelope(state) == policy.envelope(state, fast=False)


def test_subscribers_get_the_envelope_and_can_unsubscribe() -> None:
    """A subscriber gets the current envelope at once and every broadcast until it
    unsubscribes; a failing subscriber does not stop the others."""
    ctl = controller()
    a: list[PortfolioConstraintEnvelope] = []
    b: list[PortfolioConstraintEnvelope] = []

    def broken(env: PortfolioConstraintEnvelope) -> None:
        raise RuntimeError("workflow down")

    ctl.subscribe(broken)
    stop_a = ctl.subscribe(a.append)
    ctl.subscribe(b.append)
    env = ctl.broadcast_constraints()
    assert a == [env, env] and b == [env, env]
    stop_a()
    ctl.set_portfolio_mode("defensive", "judge", at(1))
    assert len(a) == 2 and len(b) == 3 and b[-1].portfolio_mode == "defensive"


def test_portfolio_state_is_json_serialisable_and_complete() -> None:
    """`get_portfolio_state` shows equity, mode, totals per symbol/cohort/strategy, trades."""
    ctl = controller()
    d = ctl.request_allocation(intent("BREAKOUT", "ETH-USD", 400))
    fill(ctl, d.intent_id, "f", 100)
    state = json.loads(json.dumps(ctl.get_portfolio_state()))
    assert state["equity"] == 100_000 and state["mode"] == "normal"
    assert state["symbols"]["ETH-USD"]["active_risk"] == 100.0
    assert state["cohorts"]["L1"]["reserved_risk"] == 300.0
    assert state["strategies"]["BREAKOUT"]["open_positions"] == 1
    trade = state["trades"][0]
    assert trade["status"] == "open" and trade["expires"] == at(300).isoformat()


# --- events --------------------------------------------------------------------------------


def test_apply_returns_decision_records_only_for_intents() -> None:
    """`apply` returns the decision record for an intent and None for other events;
    a malformed event raises EventError."""
    ctl = PortfolioController(PORTFOLIO)
    assert ctl.apply({"type": "equity", "equity": 50_000, "timestamp": None}) is None
    rec = ctl.apply(
        {
            "type": "intent",
            "intent_id": "a",
            "strategy": "BREAKOUT",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 100,
            "timestamp": "2026-03-02T14:00:00Z",
        }
    )
    assert rec is not None and rec["decision_code"] == "approved_full"
    assert rec["ts"] == "2026-03-02T14:00:00+00:00"
    fill_event = {"type": "fill", "intent_id": "a", "fill_id": "f", "filled_risk_abs": 100}
    assert ctl.apply({**fill_event, "timestamp": "2026-03-02T14:00:01Z"}) is None
    assert ctl.apply({"type": "tick", "timestamp": "2026-03-02T14:00:02Z"}) is None
    for bad in ({"type": "bogus"}, {"type": "close"}, {"type": "equity", "equity": "x"}):
        with pytest.raises(EventError):
            ctl.apply(bad)
    with pytest.raises(EventError):
        ctl.apply({"type": "tick", "timestamp": "2026-03-02T14:00:02"})  # naive


def test_bundled_event_stream_shows_every_kind_of_decision() -> None:
    """examples/events.jsonl on policies/portfolio.yaml: approvals, clips, rejections by
    several rules, fills, closes, expiry, defensive, risk_off with flattening approved."""
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(PORTFOLIO, records=records)
    decisions = [r for e in read_events(ROOT / "examples" / "events.jsonl") if (r := ctl.apply(e))]
    assert 30 <= len(list(read_events(ROOT / "examples" / "events.jsonl"))) <= 60
    codes = {r["decision_code"] for r in decisions}
    assert {
        "approved_full",
        "approved_clipped",
        "rejected_strategy_limit",
        "rejected_cohort_cap",
        "rejected_position_count",
        "rejected_symbol_cap",
        "rejected_risk_off",
        "rejected_invalid_intent",
    } <= codes
    clip_rules = {r["rule_id"] for r in decisions if r["decision_code"] == "approved_clipped"}
    assert {"cohort-cap", "portfolio-heat"} <= clip_rules
    kinds = {r["kind"] for r in records}
    assert {"fill", "close", "expire", "equity", "mode", "cancel"} <= kinds
    assert any(r["mode"] == "defensive" for r in decisions)
    flat = [r for r in decisions if r["mode"] == "risk_off" and r["approved"]]
    assert flat and all(r["rule_id"] == "risk-reducing-allowed" for r in flat)
    assert any(r["kind"] == "fill" and r["status"] == "duplicate" for r in records)
    late = [r for r in records if r["kind"] == "fill" and r["status"] == "late"]
    assert late and late[0]["late_after"] == "expired"


# --- concurrency ---------------------------------------------------------------------------


def test_threads_never_over_allocate_any_cap() -> None:
    """Many threads requesting at once never exceed the symbol, cohort, heat, position or
    strategy caps (real threads, a barrier to start them together)."""
    ctl = controller(equity=1_000_000)  # heat cap 60k: the cohort and count caps bind
    n_threads, per_thread = 8, 60
    barrier = threading.Barrier(n_threads)
    approved: list[AllocationDecision] = []
    lock = threading.Lock()
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD", "AVAX-USD"]

    def worker(k: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            d = ctl.request_allocation(
                intent(["BREAKOUT", "SCALPER"][j % 2], symbols[(k + j) % 4], 173.3, t=0)
            )
            if d.approved:
                with lock:
                    approved.append(d)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = ctl.get_portfolio_state()
    assert state["totals"]["active_trades"] == len(approved) <= 5
    assert state["strategies"]["SCALPER"]["active_trades"] <= 2
    assert state["strategies"]["BREAKOUT"]["active_trades"] <= 3
    for sym, bucket in state["symbols"].items():
        assert bucket["heat"] <= 1500, sym
    for cohort, bucket in state["cohorts"].items():
        assert bucket["heat"] <= 2500, cohort
    assert state["totals"]["heat"] == pytest.approx(sum(d.approved_risk_abs for d in approved))


def test_threads_with_fills_and_closes_keep_exact_totals() -> None:
    """Concurrent allocate / fill / close cycles end exactly flat."""
    ctl = controller(STRATEGY_LIMITS)
    n_threads = 6
    barrier = threading.Barrier(n_threads)
    caps_seen: list[int] = []

    def worker(k: int) -> None:
        barrier.wait()
        for j in range(80):
            d = ctl.request_allocation(intent("SCALPER", f"S{k}", 0.1, t=j))
            caps_seen.append(ctl.state.strategies["SCALPER"].active_trades)
            if d.approved:
                fill(ctl, d.intent_id, "f", 0.1, t=j)
                ctl.close_position(d.intent_id, at(j))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(caps_seen) <= 2
    state = ctl.state
    assert (state.active_units, state.reserved_units, state.active_trades) == (0, 0, 0)
    assert state.heat == 0.0


@pytest.mark.parametrize(
    "build",
    [
        lambda i: i.model_copy(update={"requested_risk_abs": 1e300}),
        lambda i: i.model_copy(update={"requested_risk_abs": float("nan")}),
        lambda i: PortfolioIntent.model_construct(**{**dict(i), "requested_risk_abs": -5.0}),
        lambda i: PortfolioIntent.model_construct(**{**dict(i), "intent_id": "x" * 201}),
        lambda i: i.model_copy(update={"side": "sideways"}),
    ],
    ids=["huge", "nan", "negative", "long-id", "bad-side"],
)
def test_an_intent_built_without_validation_is_refused_before_the_journal(
    tmp_path: Path, build: Any
) -> None:
    """model_copy(update=...) and model_construct skip pydantic's checks: the controller
    validates whatever arrives, so the intent is refused, nothing is journaled, the clock
    does not move, and the journal still verifies."""
    path = tmp_path / "j.jsonl"
    with controller(journal=path) as ctl:
        before = path.read_bytes()
        seq, clock = ctl.core.seq, ctl.core.clock
        decision = ctl.request_allocation(build(intent(t=5)))
        assert decision.decision_code == "rejected_invalid_intent"
        assert not decision.approved and decision.approved_risk_abs == 0
        assert path.read_bytes() == before
        assert (ctl.core.seq, ctl.core.clock) == (seq, clock)
        assert ctl.request_allocation(intent(t=6)).approved  # the loop carries on
    result = CliRunner().invoke(cli, ["replay", str(path), "--verify"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "changes",
    [{"filled_risk_abs": float("nan")}, {"filled_risk_abs": 1e300}, {"fee": float("inf")}],
    ids=["nan", "huge", "inf-fee"],
)
def test_a_fill_built_without_validation_is_refused_before_the_journal(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    """A FillUpdate made with model_copy(update=...) or model_construct skips pydantic's
    checks: the controller validates it again, so it is answered `invalid`, nothing is
    journaled, and the journal still verifies (it used to fail after it was journaled)."""
    from policy_engine.control.fields import FillUpdate

    path = tmp_path / "j.jsonl"
    with controller(journal=path) as ctl:
        d = ctl.request_allocation(intent(t=5))
        good = FillUpdate.model_validate(
            {"intent_id": d.intent_id, "fill_id": "f1", "filled_risk_abs": 10, "timestamp": at(6)}
        )
        before = path.read_bytes()
        record = ctl.on_fill_update(good.model_copy(update=changes))
        assert record["status"] == "invalid"
        assert path.read_bytes() == before
        assert ctl.on_fill_update(good)["status"] == "committed"  # the loop carries on
    result = CliRunner().invoke(cli, ["replay", str(path), "--verify"])
    assert result.exit_code == 0, result.output


def test_close_is_safe_to_call_on_a_controller_with_a_file_journal(tmp_path: Path) -> None:
    """The controller works as a context manager and closes its journal."""
    path = tmp_path / "j.jsonl"
    with controller(journal=path) as ctl:
        ctl.request_allocation(intent())
    lines = path.read_text().splitlines()
    # closing writes a checkpoint of the final state, so a restart replays nothing
    assert [json.loads(line)["type"] for line in lines] == [
        "policy",
        "equity",
        "intent",
        "checkpoint",
    ]
    ctl.close()  # a second close does nothing
    assert len(path.read_text().splitlines()) == 4
