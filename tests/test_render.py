"""The rustc-style layout of diagnostics (issue 12): the source line, a caret under the
span, `help:` with the fix; `--format concise` keeps the one-line form.

`tests/golden/render/slips.yaml` holds the slips the issue names (`=`, `&&`, `||`,
`6 %`, a misspelt name) in one file; its `.txt` and `.concise` files are the expected
`policy-check` output (`UPDATE_GOLDEN=1` rewrites them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import check_command
from policy_engine.cli.render import render
from policy_engine.diagnostics import PT301, Span, diagnostic

GOLDEN = Path(__file__).resolve().parent / "golden" / "render"


@pytest.mark.parametrize("fmt", ["text", "concise"])
def test_common_slips_are_shown_with_their_fix(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    result = CliRunner().invoke(check_command, ["slips.yaml", "--format", fmt])
    assert result.exit_code == 1
    output = re.sub(r" in \d+\.\d+s", " in 0.00s", result.stdout)
    expected = GOLDEN / f"slips.{'txt' if fmt == 'text' else 'concise'}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected.write_text(output, "utf-8")
    assert output == expected.read_text("utf-8")
    for fix in ("`==`", "`and`", "`or`", "`6%`", "`strategy.max_trades`", "`params.symbol_cap`"):
        assert fix in output, fix


def test_the_caret_sits_under_the_span_whatever_the_gutter_and_tabs() -> None:
    """Line numbers of any width keep the gutter aligned; a tab before the span counts as
    the four spaces it is shown as; the caret covers the whole name."""
    source = "\n" * 99 + "  x:\tstrategy.max_trade + 1\n"
    x = diagnostic(
        PT301, "unknown name `strategy.max_trade`", Span("p.yaml", 100, 6), "did you mean `y`?"
    )
    assert render(x, source).splitlines() == [
        "error[PT301]: unknown name `strategy.max_trade`",
        "   --> p.yaml:100:6",
        "    |",
        "100 |   x:    strategy.max_trade + 1",
        "    |         ^^^^^^^^^^^^^^^^^^",
        "    |",
        "help: did you mean `y`?",
    ]


def test_without_its_source_line_a_diagnostic_still_says_where_and_how() -> None:
    x = diagnostic(PT301, "unknown name `a`", Span("gone.yaml", 3, 1), "did you mean `b`?")
    assert render(x, None).splitlines() == [
        "error[PT301]: unknown name `a`",
        " --> gone.yaml:3:1",
        "help: did you mean `b`?",
    ]
