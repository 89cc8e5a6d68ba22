"""An ended trade keeps its fill ids (bounded by count and by event time), in the snapshot too.

A fill re-sent after its trade closed is a ``duplicate`` (no exposure), however late
within the retention; a NEW fill id for it is a late orphan (real exposure); past the
retention a fill for it is ``unknown``: reported, not absorbed. Every earlier snapshot
format (tests/fixtures/snapshots/format-N.json) still restores.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from policy_engine.control import book as book_module
from policy_engine.control.book import ENDED_RETENTION
from policy_engine.control.controller import PortfolioController
from policy_engine.control.core import ControlCore
from policy_engine.control.events import FillEvent, FillUpdate, parse_fill
from policy_engine.control.snapshot import FORMAT, MIGRATIONS, OLDEST_FORMAT
from policy_engine.engine.policy import load_policy_text

from support.control import PORTFOLIO_POLICY, intent, stamp

ROOT = Path(__file__).resolve().parent
SNAPSHOTS = ROOT / "fixtures" / "snapshots"


def _core() -> ControlCore:
    core = ControlCore(load_policy_text(PORTFOLIO_POLICY, "policy.yaml"))
    core.apply({"type": "equity", "equity": 100_000, "peak_equity": None, "timestamp": stamp(0)})
    return core


def _fill(iid: str, fid: str, risk: float, at: float) -> dict[str, Any]:
    return {
        "type": "fill",
        "intent_id": iid,
        "fill_id": fid,
        "filled_risk_abs": risk,
        "timestamp": stamp(at),
    }


def _closed_trade() -> ControlCore:
    core = _core()
    core.apply({"type": "intent", **intent("a1", "BREAKOUT", "BTC-USD", 300, at=1)})
    assert core.apply(_fill("a1", "f1", 300, 2)).records[-1]["status"] == "committed"
    core.apply({"type": "close", "intent_id": "a1", "timestamp": stamp(3)})
    assert core.state.active_trades == 0 and core.state.heat == 0
    return core


def test_a_fill_re_sent_after_its_trade_closed_is_a_duplicate_and_a_new_one_is_late() -> None:
    core = _closed_trade()
    again = core.apply(_fill("a1", "f1", 300, 4)).records[-1]
    assert again["status"] == "duplicate"
    assert core.state.active_trades == 0 and core.state.heat == 0
    refused = core.refusal(FillEvent(core_fill("a1", "f1"))).refused  # what the shells ask first
    assert refused is not None and refused.records[-1]["status"] == "duplicate"
    fresh = core.apply(_fill("a1", "f2", 100, 5)).records[-1]
    assert fresh["status"] == "late" and core.state.active_trades == 1
    assert core.state.heat == 100
    core.apply({"type": "close", "intent_id": "a1", "timestamp": stamp(6)})
    # both executions of the trade stay known after the orphan closes too
    for fid in ("f1", "f2"):
        assert core.apply(_fill("a1", fid, 50, 7)).records[-1]["status"] == "duplicate"
    assert core.state.active_trades == 0 and core.state.heat == 0


def core_fill(iid: str, fid: str) -> FillUpdate:
    return parse_fill(
        {"intent_id": iid, "fill_id": fid, "filled_risk_abs": 1, "timestamp": stamp(4)}
    )


def test_the_fill_ids_survive_a_snapshot_and_the_in_process_controller_keeps_them(
    tmp_path: Path,
) -> None:
    twin = ControlCore.restore(_closed_trade().snapshot())
    assert twin.apply(_fill("a1", "f1", 300, 4)).records[-1]["status"] == "duplicate"
    assert twin.state.heat == 0

    policy = tmp_path / "policy.yaml"
    policy.write_text(PORTFOLIO_POLICY)
    ctl = PortfolioController(policy, equity=100_000, clock=None)
    assert ctl.request_allocation(intent("b1", "BREAKOUT", "BTC-USD", 300, at=1)).approved
    fill = {"intent_id": "b1", "fill_id": "f1", "filled_risk_abs": 300, "timestamp": stamp(2)}
    assert ctl.on_fill_update(fill)["status"] == "committed"
    ctl.close_position("b1", stamp(3))
    assert ctl.on_fill_update({**fill, "timestamp": stamp(4)})["status"] == "duplicate"
    totals = ctl.get_portfolio_state()["totals"]
    assert totals["active_trades"] == 0 and totals["heat"] == 0


def test_past_the_retention_a_fill_is_unknown_and_not_absorbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By event time: ENDED_RETENTION after the trade ended it is forgotten; by count: only
    the last ENDED_MEMORY ended trades are kept."""
    core = _closed_trade()
    later = ENDED_RETENTION.total_seconds() + 60
    core.apply(
        {"type": "equity", "equity": 100_000, "peak_equity": None, "timestamp": stamp(later)}
    )
    gone = core.apply(_fill("a1", "f1", 300, later + 1)).records[-1]
    assert gone["status"] == "unknown" and "not absorbed" in gone["message"]
    assert core.state.active_trades == 0 and core.state.heat == 0
    assert timedelta(days=7) == ENDED_RETENTION  # what the docs promise

    monkeypatch.setattr(book_module, "ENDED_MEMORY", 1)
    core = _closed_trade()
    core.apply({"type": "intent", **intent("a2", "BREAKOUT", "BTC-USD", 100, at=4)})
    core.apply({"type": "close", "intent_id": "a2", "timestamp": stamp(5)})
    assert core.apply(_fill("a1", "f1", 300, 6)).records[-1]["status"] == "unknown"
    assert core.state.heat == 0


@pytest.mark.parametrize("number", range(OLDEST_FORMAT, int(FORMAT.rsplit("/", 1)[1])))
def test_every_earlier_snapshot_format_restores(number: int) -> None:
    """A format-N snapshot (recorded by the release that wrote format N) restores, through
    one migration per format, to a core that takes the same events as a fresh one would."""
    assert number in MIGRATIONS
    old = json.loads((SNAPSHOTS / f"format-{number}.json").read_text())
    core = ControlCore.restore(old)
    snap = core.snapshot()
    assert snap["format"] == FORMAT
    assert ControlCore.restore(snap).snapshot() == snap
    assert (
        core.portfolio_state()["totals"]["active_trades"] == 1
    )  # the live trade a2 (100 filled of 200)
    assert core.apply(_fill("a2", "g1", 100, 6)).records[-1]["status"] == "duplicate"
    assert core.apply(_fill("a2", "g2", 100, 7)).records[-1]["status"] == "committed"
