"""Positions by id (issue 23 item 3): an intent names the open position it reduces or adds to
(`position_id`, the intent id that opened it); an id naming no open position in its symbol is
refused (`rejected_unknown_position`), a reduce-only intent that would add to or flip the
position too (`rejected_reduce_only_position`), neither journaled; rules read `position.*`.
Replay re-checks, so a what-if where the opening intent is refused refuses the reducing one;
the snapshot restores the positions; `policy explain` reads them from a state file; a name
that is not a field of `position` is a load error. NautilusTrader's numbers:
docs/cookbook/positions_by_id_test.yaml; through Temporal: tests/test_temporal_book.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from policy_engine import PortfolioController
from policy_engine.analysis.check import check_bytes
from policy_engine.cli import cli
from policy_engine.control.core import ControlCore
from policy_engine.control.replay import replay

from support.loading import problems

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook"
POLICY = COOKBOOK / "positions_by_id.yaml"
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def intent(iid: str, seconds: float, **kw: Any) -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": "CASH",
        "symbol": kw.pop("symbol", "AUD-USD"),
        "side": kw.pop("side", "long"),
        "requested_risk_abs": kw.pop("risk", 1_000),
        "timestamp": T0 + timedelta(seconds=seconds),
        **kw,
    }


def opened(journal: list[dict[str, Any]] | None = None) -> PortfolioController:
    ctl = PortfolioController(POLICY, equity=1_000_000, journal=journal, clock=None)
    assert ctl.request_allocation(intent("P-1", 0, requested_notional_abs=650)).approved
    fill = {"intent_id": "P-1", "fill_id": "f", "filled_risk_abs": 1_000, "price": 0.65}
    ctl.on_fill_update({**fill, "timestamp": T0})
    return ctl


def test_unknown_and_overreaching_positions_are_refused_and_not_journaled() -> None:
    journal: list[dict[str, Any]] = []
    ctl = opened(journal)
    before = len(journal)
    short = {"side": "short", "reduce_only": True}
    other = ctl.request_allocation(intent("x1", 1, position_id="P-1", symbol="EUR-USD", **short))
    assert other.decision_code == "rejected_unknown_position"  # not a position in EUR-USD
    assert "no open position 'P-1' in EUR-USD" in other.reasons[0]
    over = ctl.request_allocation(intent("x2", 2, position_id="P-1", risk=1_000.5, **short))
    assert over.decision_code == "rejected_reduce_only_position"
    assert "exceeds position P-1 (1000.0)" in over.reasons[0]
    assert len(journal) == before  # refused: nothing journaled, nothing changed
    assert ctl.request_allocation(intent("x3", 3, position_id="P-1", **short)).approved
    # a reservation is not a position until it is filled
    assert ctl.request_allocation(intent("R-1", 4)).approved
    unfilled = ctl.request_allocation(intent("x4", 5, position_id="R-1", **short))
    assert unfilled.decision_code == "rejected_unknown_position"


def test_rules_read_the_position_and_a_snapshot_keeps_it() -> None:
    ctl = opened()
    ctl.mark("AUD-USD", 0.66, T0 + timedelta(seconds=1))  # 1,000 x 0.66 / 0.65 - 650 = +10
    early = ctl.request_allocation(intent("add-1", 60, position_id="P-1"))
    assert early.decision_code == "rejected_add_to_position"  # 60 s after its entry
    assert "unrealized 10" in early.reasons[0]
    core = ControlCore.restore(ctl.core.snapshot())
    late = {
        **intent("add-2", 300, position_id="P-1"),
        "timestamp": (T0 + timedelta(seconds=300)).isoformat(),
    }
    out = core.apply({"type": "intent", **late}, decide=True)
    assert out.decision is not None and out.decision.decision_code == "approved_full"


def test_a_what_if_that_refuses_the_opening_refuses_the_reduction() -> None:
    journal: list[dict[str, Any]] = []
    ctl = opened(journal)
    ctl.request_allocation(intent("exit", 1, position_id="P-1", side="short", reduce_only=True))
    assert [r["decision_code"] for r in replay(journal) if r["kind"] == "decision"] == [
        "approved_full",
        "approved_full",
    ]
    strict = COOKBOOK / "strategy_switch.yaml"  # CASH is no strategy it declares: refused
    what_if = [r["decision_code"] for r in replay(journal, strict) if r["kind"] == "decision"]
    assert what_if[1] == "rejected_unknown_position", what_if


def test_explain_reads_positions_from_a_state_file_and_typos_do_not_load(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(
        "equity: 100000\npositions:\n  P-1: {side: long, size: 1000, unrealized_pnl: -3,"
        ' entry_time: "2026-01-05T09:00:00Z"}\n'
    )
    one = tmp_path / "intent.yaml"
    one.write_text(
        "intent_id: a\nstrategy: CASH\nsymbol: AUD-USD\nside: long\nrequested_risk_abs: 10\n"
        'position_id: P-1\ntimestamp: "2026-01-05T10:00:00Z"\n'
    )
    result = CliRunner().invoke(
        cli, ["explain", str(POLICY), "--intent", str(one), "--state", str(state)]
    )
    assert result.exit_code == 0, result.output
    assert "position.unrealized_pnl = -3" in result.output
    assert "rejected_add_to_position" in result.output
    found = problems("rules:\n  - id: r\n    require: position.sise > 0\n")
    assert any("position.size" in p for p in found), found


def test_reading_a_position_unguarded_is_pt434() -> None:
    """`position.*` fails for an intent that names no position: read without
    `has(intent.position_id)` it is PT434 (as an input with a null default); guarded, silent."""

    def check_text(text: str, name: str) -> list[Any]:
        return check_bytes(text.encode(), name).diagnostics

    head = "api_version: policy-engine/v1\nname: p\nversion: 1\nrules:\n  - id: r\n"
    bare = check_text(head + "    require: position.size < 10\n", "p.yaml")
    assert [d.code for d in bare] == ["PT434"]
    guarded = check_text(
        head + "    when: has(intent.position_id)\n    require: position.size < 10\n", "p.yaml"
    )
    assert [d.code for d in guarded] == []
    inline = check_text(
        head + "    require: has(intent.position_id) and position.size < 10\n", "p.yaml"
    )
    assert [d.code for d in inline] == []
