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
