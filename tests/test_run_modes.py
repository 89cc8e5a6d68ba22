"""`policy run` shows when and why the portfolio mode moves."""

from click.testing import CliRunner

from policy_engine.cli import cli as main


def test_run_prints_each_mode_change_with_its_source() -> None:
    """The bundled stream moves normal -> defensive (drawdown) -> risk_off (override) and back."""
    result = CliRunner().invoke(main, ["run", "policies/portfolio.yaml", "examples/events.jsonl"])
    assert result.exit_code == 0, result.output
    modes = [line for line in result.output.splitlines() if line.startswith("== mode")]
    assert (
        modes[0] == "== mode normal -> defensive (drawdown: portfolio.drawdown >= 5%; drawdown 6%)"
    )
    assert modes[1].startswith("== mode defensive -> risk_off (override: ")
    assert modes[-1].startswith("== mode defensive -> normal (drawdown: default;")


def test_json_run_has_only_records() -> None:
    """With --json every stdout line is a JSON decision record, no mode lines."""
    result = CliRunner().invoke(
        main, ["run", "policies/portfolio.yaml", "examples/events.jsonl", "--json"]
    )
    assert result.exit_code == 0
    assert not [line for line in result.stdout.splitlines() if not line.startswith("{")]
