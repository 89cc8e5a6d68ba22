"""`policy-check` over many files spreads them over worker processes without changing its output."""

import pytest
from click.testing import CliRunner

from policy_engine import cli
from policy_engine.cli import check as check_module

GOLDEN = ["tests/golden/lint", "tests/golden/load"]


def _check(args: list[str]) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli.check_command, args)
    lines = result.output.splitlines()
    return result.exit_code, [*lines[:-1], lines[-1].split(" in ")[0]]  # drop the timing


def test_parallel_and_sequential_checks_print_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """68 broken policies (over the parallel threshold): same lines, order, summary and exit code."""
    parallel = _check([*GOLDEN, "--format", "text"])
    monkeypatch.setattr(check_module, "PARALLEL_FROM", 10**9)
    sequential = _check([*GOLDEN, "--format", "text"])
    assert parallel == sequential
    assert parallel[0] == 1 and len(parallel[1]) > 100
