"""Every snapshot format ever written restores (issue 17, "Safe upgrades").

tests/fixtures/snapshots/format-N.json was taken by the release that wrote format N
(tests/fixtures/snapshots/generate.py, run on that release's code) after a representative
stream, with what that release's ``portfolio_state()`` reported beside it. Through the chain
of migrations (one per format) it restores to a core reporting the same state, whose own
snapshot is a valid current one. A journal whose checkpoint an older release wrote passes
``policy replay --verify`` and recovers from it; the same checkpoint forged does not verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import cli
from policy_engine.control import snapshot as snapshots
from policy_engine.control.chain import unseal
from policy_engine.control.controller import PortfolioController
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError
from policy_engine.control.verify import scan
from policy_engine.engine.policy import load_policy_text

from support.forge import reseal, sealable

SNAPSHOTS = Path(__file__).resolve().parent / "fixtures" / "snapshots"
GENERATED = (*range(1, 8), 10, 11)  # 8 and 9: the scenarios of their own tests


def _load(name: str) -> Any:
    return json.loads((SNAPSHOTS / name).read_text())


def _events(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SNAPSHOTS / name).read_text().splitlines()]


def _fresh(value: Any) -> bool:
    """Whether ``value`` is a bucket's row of nothing (all zeros), as a fresh bucket reads."""
    return isinstance(value, dict) and bool(value) and not any(value.values())


def _missing(old: Any, new: Any, path: str = "state") -> list[str]:
    """Where ``new`` differs from ``old`` on what ``old`` has (a later release reports more
    fields: those are not compared)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            m
            for k in old
            if k in new or not _fresh(old[k])  # format 10 on lists no bucket equal to a fresh one
            for m in _missing(old[k], new.get(k, KeyError), f"{path}.{k}")
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            m
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for m in _missing(a, b, f"{path}[{i}]")
        ]
    return [] if old == new else [f"{path}: {old!r} became {new!r}"]


def test_every_earlier_format_has_one_migration_and_none_is_refused() -> None:
    assert snapshots.OLDEST_FORMAT == 1
    assert sorted(snapshots.MIGRATIONS) == list(range(1, snapshots.FORMAT_VERSION))
    for number in range(1, snapshots.FORMAT_VERSION + 1):
        assert not snapshots.older_format({"format": f"{snapshots.FORMAT_PREFIX}{number}"})
    assert snapshots.older_format({"format": f"{snapshots.FORMAT_PREFIX}0"})
    with pytest.raises(EventError, match="has no migration"):
        snapshots.migrate({"format": f"{snapshots.FORMAT_PREFIX}0"})


@pytest.mark.parametrize("number", GENERATED)
def test_a_snapshot_of_every_earlier_format_restores_to_the_state_its_release_reported(
    number: int,
) -> None:
    old = _load(f"format-{number}.json")
    assert old["format"] == f"{snapshots.FORMAT_PREFIX}{number}"
    core = ControlCore.restore(old)
    assert _missing(_load(f"format-{number}.state.json"), core.portfolio_state()) == []
    snap = core.snapshot()
    assert snap["format"] == snapshots.FORMAT
    assert ControlCore.restore(snap).snapshot() == snap
    assert snapshots.migrate(snap) == snap  # a current snapshot is not touched


@pytest.mark.parametrize("number", GENERATED)
def test_a_migrated_core_keeps_deciding_correctly(number: int) -> None:
    """The live trades take their fills and closes exactly; a decided id stays decided (a
    format-1 ended id too, though its trade is not remembered)."""
    core = ControlCore.restore(_load(f"format-{number}.json"))
    before = core.portfolio_state()["totals"]
    a2 = next(t for t in core.portfolio_state()["trades"] if t["intent_id"] == "a2")
    assert a2["filled_risk_abs"] == 100 and a2["reserved_risk_abs"] == 200
    fill = {"type": "fill", "intent_id": "a2", "fill_id": "g2", "filled_risk_abs": 200}
    assert (
        core.apply({**fill, "timestamp": "2026-01-05T09:01:00+00:00"}).records[-1]["status"]
        == "committed"
    )
    assert core.portfolio_state()["totals"]["heat"] == before["heat"]  # reserved became filled
    core.apply({"type": "close", "intent_id": "a2", "timestamp": "2026-01-05T09:01:01+00:00"})
    after = core.portfolio_state()["totals"]
    assert after["heat"] == before["heat"] - 300
    assert after["active_trades"] == before["active_trades"] - 1
    reused = {"type": "intent", "intent_id": "a1", "strategy": "SCALPER", "symbol": "SOL-USD"}
    if number >= 5:  # the scope's input the policy requires
        reused["venue"] = "BINANCE"
    decision = core.apply(
        {**reused, "side": "long", "requested_risk_abs": 10, "timestamp": "2026-01-05T09:01:02Z"}
    ).records[-1]
    assert decision["decision_code"] == "rejected_duplicate_intent"  # never decided twice
    assert core.portfolio_state()["totals"] == after


def test_a_format_1_ended_trade_is_not_invented_into_a_bucket() -> None:
    """Format 1 remembered of an ended trade only why it ended: a later fill for it is
    reported, not absorbed as exposure in a strategy or symbol the migration made up."""
    core = ControlCore.restore(_load("format-1.json"))
    before = core.portfolio_state()["totals"]
    fill = {"type": "fill", "intent_id": "a5", "fill_id": "k2", "filled_risk_abs": 50}
    record = core.apply({**fill, "timestamp": "2026-01-05T09:01:00+00:00"}).records[-1]
    assert record["status"] == "unknown"
    assert core.portfolio_state()["totals"] == before


def test_a_format_3_day_starts_at_the_peak_equity_fail_closed() -> None:
    """Format 3 had no trading day: the day is the clock's, started at the peak equity, so
    the day's loss reads at least as large as it was."""
    core = ControlCore.restore(_load("format-3.json"))
    assert core.state.day_start_equity == core.state.peak_equity == 100_000
    assert core.state.day_pnl == -3_500
    assert core.days.day is not None and core.days.day.isoformat() == "2026-01-05"


def _journal_with_old_checkpoint(tmp_path: Path, number: int, forge: float = 0) -> Path:
    """The journal a controller writes for the stream of format-N.checkpoint.events.jsonl,
    its closing checkpoint replaced by the one the format-N release took after the same
    events (its equity moved by ``forge``), the chain sealed as the release would."""
    old = _load(f"format-{number}.checkpoint.json")
    policy = load_policy_text(old["policy"]["source"], old["policy"]["path"])
    journal = tmp_path / f"format-{number}.jsonl"
    with PortfolioController(
        policy, 100_000, journal=journal, clock=None, durability="off", checkpoint_every=None
    ) as ctl:
        ctl.apply_all(_events(f"format-{number}.checkpoint.events.jsonl"))
    lines = journal.read_bytes().splitlines(keepends=True)
    (cp,) = scan(journal).checkpoints
    held = json.loads(unseal(lines[cp.line - 1])[0])
    assert held["snapshot"]["seq"] == old["seq"]  # the same events before it
    held["snapshot"] = {**old, "equity": old["equity"] + forge}
    lines[cp.line - 1] = sealable(held)
    journal.write_bytes(b"".join(reseal(lines, cp.line - 1)))
    return journal


@pytest.mark.parametrize("number", GENERATED)
def test_a_journal_with_an_older_formats_checkpoint_verifies_and_a_forged_one_does_not(
    tmp_path: Path, number: int
) -> None:
    journal = _journal_with_old_checkpoint(tmp_path, number)
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 0, result.output
    assert "1 checkpoint equal to the replayed state" in result.output
    ctl = PortfolioController.recover(journal)  # restored from the old checkpoint itself
    try:
        assert ctl.recovery is not None and ctl.recovery.replayed == 0
        assert ctl.recovery.checkpoint_line == scan(journal).checkpoints[0].line
        expected = ControlCore.restore(_load(f"format-{number}.checkpoint.json")).snapshot()
        assert ctl.core.snapshot() == expected
    finally:
        ctl.close()
    (tmp_path / "forged").mkdir()
    forged = _journal_with_old_checkpoint(tmp_path / "forged", number, forge=1_000_000)
    result = CliRunner().invoke(cli, ["replay", str(forged), "--verify"])
    assert result.exit_code == 1, result.output
    assert "the checkpoint does not equal the state" in result.output
