"""`policy run`'s rough edges, each pinned by a test that failed before the fix (issue 12):
shadow findings visible, a summary by rule id only, exit 0 on a closed pipe, and decision
numbers that are the events file's own line numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
TS = "2026-01-05T09:00:00Z"

SHADOW_POLICY = """\
api_version: policy-engine/v1
name: shadow-run
version: 1
strategies:
  S: {max_trades: 5}
rules:
  - id: trades
    require: strategy.active_trades < strategy.max_trades
  - id: small-only
    limit: 100
    enforcement: warn
    message: "would cap {intent.risk} at 100"
"""


def _intent(intent_id: str, risk: float, **extra: object) -> str:
    event = {
        "type": "intent",
        "intent_id": intent_id,
        "strategy": "S",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": TS,
        **extra,
    }
    return json.dumps(event)


def test_shadow_findings_show_per_decision_and_in_the_summary(tmp_path: Path) -> None:
    """Three approvals, two of which a shadow rule would have blocked: the text says so."""
    policy = tmp_path / "p.yaml"
    policy.write_text(SHADOW_POLICY)
    events = tmp_path / "e.jsonl"
    events.write_text(
        "\n".join(
            [
                json.dumps({"type": "equity", "equity": 100000, "timestamp": TS}),
                _intent("a", 50),
                _intent("b", 400),
                _intent("c", 250),
            ]
        )
        + "\n"
    )
    result = CliRunner().invoke(cli, ["run", str(policy), str(events)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "#2 a S BTC-USD 50 -> 50 APPROVED approved_full",
        "#3 b S BTC-USD 400 -> 400 APPROVED approved_full",
        "    shadow small-only would have blocked it: would cap 400 at 100",
        "#4 c S BTC-USD 250 -> 250 APPROVED approved_full",
        "    shadow small-only would have blocked it: would cap 250 at 100",
        "3 decisions: 3 approved, 0 clipped, 0 rejected",
        "  shadow small-only would have blocked 2 decisions",
    ]
    as_json = CliRunner().invoke(cli, ["run", str(policy), str(events), "--json"])
    assert json.loads(as_json.stderr)["summary"]["shadow_by_rule"] == {"small-only": 2}


def test_the_summary_counts_by_rule_id_never_by_decision_code() -> None:
    """An invalid intent is refused before any rule runs: it is not `rejected by <code>`."""
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(ROOT / "examples/events.jsonl")])
    assert result.exit_code == 0, result.output
    summary = result.stdout.splitlines()[
        result.stdout.splitlines().index("22 decisions: 11 approved, 3 clipped, 8 rejected") :
    ]
    assert "  rejected by rejected_invalid_intent: 1" not in summary
    assert "  refused before any rule ran (rejected_invalid_intent): 1" in summary
    rule_ids = {line.split(" by ", 1)[1].split(":")[0] for line in summary if " by " in line}
    assert rule_ids == {
        "cohort-cap",
        "portfolio-heat",
        "strategy-max-trades",
        "flatten-only",
        "position-count",
        "symbol-cap",
    }


def test_decision_numbers_are_the_events_file_line_numbers(tmp_path: Path) -> None:
    """`#N` is the line of the intent in the events file, blank lines included."""
    events = tmp_path / "e.jsonl"
    lines = [
        json.dumps({"type": "equity", "equity": 100000, "timestamp": TS}),
        "",
        _intent("first", 10, strategy="SCALPER"),
        "   ",
        _intent("second", 10, strategy="SCALPER"),
    ]
    events.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(events)])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith("#3 first ")
    assert out[1].startswith("#5 second ")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n\n" + json.dumps({"type": "close"}) + "\n")
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:3:" in result.output  # the malformed event is named by its line too


def test_a_closed_pipe_exits_0(tmp_path: Path) -> None:
    """`policy run ... | head -1`: the reader stops early; that is neither a finding nor an error."""
    events = tmp_path / "big.jsonl"
    body = (ROOT / "examples" / "events.jsonl").read_text()
    events.write_text(body * 40)
    proc = subprocess.Popen(
        [sys.executable, "-m", "policy_engine.cli", "run", str(PORTFOLIO), str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its first line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert first.startswith(b"#2 ")
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_fills_cancels_and_closes_show_with_their_status(tmp_path: Path) -> None:
    """Each fill, cancel and close prints a line with its status, the refused ones too (a
    duplicate, one for no trade, a late fill absorbed after a cancel); the summary counts
    them by status, in text and in the JSON summary (issue 18, item 6)."""
    events = tmp_path / "e.jsonl"

    def ev(kind: str, **fields: object) -> str:
        return json.dumps({"type": kind, "timestamp": TS, **fields})

    lines = [
        _intent("a", 400, strategy="SCALPER"),
        _intent("b", 300, strategy="BREAKOUT"),
        ev("fill", intent_id="a", fill_id="f1", filled_risk_abs=250),
        ev("fill", intent_id="a", fill_id="f1", filled_risk_abs=250),
        ev("fill", intent_id="ghost", fill_id="f9", filled_risk_abs=10),
        ev("cancel", intent_id="b"),
        ev("fill", intent_id="b", fill_id="f2", filled_risk_abs=100),
        ev("cancel", intent_id="nothing"),
        ev("close", intent_id="a", risk_abs=50, realized_pnl=-5),
        ev("close", intent_id="a"),
    ]
    events.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(events), "--equity", "100000"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[2:10] == [
        "#3 fill f1 a COMMITTED 250",
        "#4 fill f1 a DUPLICATE",
        "#5 fill f9 ghost UNKNOWN: fill f9 for ghost: no such trade; not absorbed",
        "#6 cancel b CANCELLED released 300",
        "#7 fill f2 b LATE 100: fill f2 for b arrived after the trade was cancelled: "
        "absorbed as an orphan position of 100.0",
        "#8 cancel nothing UNKNOWN: cancel for nothing: no such trade",
        "#9 close a REDUCED released active 50 reserved 0, 200 left, realized P&L -5",
        "#10 close a CLOSED released active 200 reserved 150",
    ]
    assert "4 fills: 1 committed, 1 duplicate, 1 late, 1 unknown" in out
    assert "2 cancels: 1 cancelled, 1 unknown" in out
    assert "2 closes: 1 closed, 1 reduced" in out
    as_json = CliRunner().invoke(
        cli, ["run", str(PORTFOLIO), str(events), "--json", "--equity", "100000"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert [json.loads(x)["kind"] for x in as_json.stdout.splitlines()] == ["decision"] * 2
    assert json.loads(as_json.stderr)["summary"]["lifecycle"] == {
        "cancel:cancelled": 1,
        "cancel:unknown": 1,
        "close:closed": 1,
        "close:reduced": 1,
        "fill:committed": 1,
        "fill:duplicate": 1,
        "fill:late": 1,
        "fill:unknown": 1,
    }
