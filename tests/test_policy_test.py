"""`policy test`: decision tests next to policies, pytest-like output, coverage (issue 12)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import cli

ROOT = Path(__file__).resolve().parent.parent

POLICY = """\
api_version: policy-engine/v1
name: small
version: 1
params:
  cap: 500
strategies:
  S: {max_trades: 1}
rules:
  - id: trades
    require: strategy.active_trades < strategy.max_trades
    code: rejected_trades
  - id: cap
    limit: params.cap if intent.side == "long" else 2 * params.cap
    on_exceed: clip
  - id: exits
    allow: intent.reduce_only and intent.risk <= 10
"""

TESTS = """\
defaults:
  state: {equity: 100000}
  intent: {intent_id: i, strategy: S, symbol: BTC-USD, side: long, requested_risk_abs: 100,
           timestamp: "2026-01-05T09:00:00Z"}
cases:
  - id: small-passes
    expect: {decision_code: approved_full, approved_risk_abs: 100}
  - id: big-clips
    intent: {requested_risk_abs: 800}
    expect: {decision_code: approved_clipped, approved_risk_abs: 400, rule_id: cap}
"""


def _write(tmp_path: Path, tests: str = TESTS) -> Path:
    (tmp_path / "small.yaml").write_text(POLICY)
    (tmp_path / "small_test.yaml").write_text(tests)
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["test", *args])
    return result.exit_code, re.sub(r" in \d+\.\d\ds", " in 0.00s", result.stdout)


def test_the_bundled_policies_ship_tests_that_fire_every_rule() -> None:
    """CI holds it: every bundled policy's tests pass and make every one of its rules fire."""
    code, out = _run("--coverage", "--min-coverage", "100", str(ROOT / "policies"))
    assert code == 0, out
    assert re.search(r"^\d+ passed, 0 failed in 0.00s$", out.splitlines()[-1])
    # portfolio.yaml, strategy_limits.yaml and day_trading.yaml
    assert out.count("fired (100%)") == 3


def test_a_failure_shows_expected_actual_and_the_deciding_rules_numbers(tmp_path: Path) -> None:
    folder = _write(tmp_path)
    code, out = _run(str(folder))
    assert code == 1
    path = folder / "small_test.yaml"
    assert out.splitlines() == [
        f"{path} .F",
        "",
        f"FAILED {path}:8 case big-clips",
        "  approved_risk_abs: expected 400, got 500",
        "  decided by `cap`",
        "    cap: limit exceeded",
        "    intent.side=long params.cap=500 intent.risk=800",
        "",
        "1 passed, 1 failed in 0.00s",
    ]


def test_coverage_reports_rules_and_one_way_branches_and_gates(tmp_path: Path) -> None:
    folder = _write(tmp_path, TESTS.replace("approved_risk_abs: 400", "approved_risk_abs: 500"))
    code, out = _run("--coverage", str(folder))
    assert code == 0, out
    report = out.split("\n\n")[1].splitlines()
    assert report[0].endswith("(small v1): 1 of 3 rules fired (33.33%), 0 of 2 branches both ways")
    assert report[1:4] == [
        " ! trades  passed only  passed 2",
        "   cap     fired        clipped 1, passed 1",
        " ! exits   passed only  passed 2",
    ]
    assert (
        '   branch in cap (limit): `params.cap if intent.side == "long" else 2 * params.cap` only true'
        in report
    )
    assert (
        "   branch in exits (allow): `intent.reduce_only and intent.risk <= 10` only false"
        in report
    )
    code, out = _run("--min-coverage", "50", str(folder))
    assert code == 1
    assert "BELOW --min-coverage 50" in out


def test_scenarios_run_through_a_real_controller(tmp_path: Path) -> None:
    scenario = (
        TESTS
        + """\
scenarios:
  - id: one-trade-at-a-time
    events:
      - {type: intent, intent_id: a}
      - {type: intent, intent_id: b}
      - {type: close, intent_id: a}
      - {type: intent, intent_id: c}
    expect:
      a: {decision_code: approved_full}
      b: {decision_code: rejected_trades, rule_id: trades}
      c: {decision_code: approved_full}
"""
    )
    folder = _write(tmp_path, scenario.replace("approved_risk_abs: 400", "approved_risk_abs: 500"))
    code, out = _run("--coverage", str(folder))
    assert code == 0, out
    assert "   trades  fired        rejected 1, passed 4" in out


def test_formats_and_exit_codes(tmp_path: Path) -> None:
    folder = _write(tmp_path)
    code, out = _run("--format", "json", "--coverage", str(folder))
    assert code == 1
    data = json.loads(out)
    assert data["summary"]["passed"] == 1 and data["summary"]["failed"] == 1
    failed = data["files"][0]["tests"][1]
    assert failed["id"] == "big-clips" and failed["line"] == 8 and not failed["passed"]
    assert data["coverage"][0]["rules_fired"] == 1
    code, out = _run("--format", "github", str(folder))
    assert out.splitlines()[0].startswith(
        f"::error file={folder / 'small_test.yaml'},line=8,title=case big-clips::"
    )
    assert _run(str(tmp_path / "nothing-here"))[0] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(str(empty))[0] == 2


def test_a_broken_test_file_or_policy_is_reported_not_crashed(tmp_path: Path) -> None:
    folder = _write(tmp_path, "cases:\n  - id: x\n    expect: {approved: true}\n")
    code, out = _run(str(folder))
    assert code == 1
    assert "decision_code: Field required" in out
    assert out.splitlines()[-1] == "0 passed, 0 failed, 1 file not run in 0.00s"
    shutil.copy(ROOT / "tests/golden/lint/PT301.yaml", folder / "small.yaml")
    (folder / "small_test.yaml").write_text(TESTS)
    code, out = _run(str(folder))
    assert code == 1
    assert "the policy does not load" in out and "PT301" in out


def test_with_replaces_constants_for_one_test(tmp_path: Path) -> None:
    tests = (
        TESTS.replace("approved_risk_abs: 400", "approved_risk_abs: 500")
        + """\
  - id: lower-cap
    with: {params: {cap: 50}}
    expect: {decision_code: approved_clipped, approved_risk_abs: 50}
  - id: rules-cannot-be-replaced
    with: {rules: []}
    expect: {decision_code: approved_full}
"""
    )
    code, out = _run(str(_write(tmp_path, tests)))
    assert code == 1
    assert "`with` may replace params, strategies, symbols, cohorts, modes, not rules" in out
