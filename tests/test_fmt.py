"""`policy fmt`: a canonical layout that keeps comments and meaning (issue 12).

The property test takes the policies the project ships, rewrites every expression with
random redundant parentheses and spacing, and formats the result: the formatted policy
must load to the same compiled meaning (the semantic diff reports nothing and every checked
rule unparses identically), and formatting it again must change nothing.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import load_policy_text
from policy_engine.analysis.diff import semantic_diff
from policy_engine.cli import cli
from policy_engine.document.formatter import (
    FormatError,
    expression_slots,
    format_policy,
    same_meaning,
)
from policy_engine.lang import syntax as s
from policy_engine.lang.parser import parse_expression

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [
    p
    for p in sorted(
        [*(ROOT / "policies").glob("*.yaml"), *(ROOT / "docs" / "cookbook").glob("*.yaml")]
    )
    if not p.name.endswith("_test.yaml")
]

MESSY = """\
# yaml-language-server: $schema=../schemas/policy.schema.json
api_version: policy-engine/v1   # the format
name: messy
version: 1
params:
    heat_cap: 6%        # of equity
    symbol_cap: 1_500
strategies:
    SCALPER:   {enabled: true,   max_trades: 2}
rules:
# a comment before the first rule
-   id: trades
    require: (strategy.active_trades)<strategy.max_trades     # the seed's limit
-   id: heat
    limit: ((params.heat_cap*portfolio.equity)) -  portfolio.heat
    when: "intent.side=='long' and (not intent.reduce_only)"
    on_exceed: clip
-   id: symbol
    limit: params.symbol_cap - symbol.heat if (intent.symbol in ['BTC-USD',"ETH-USD"]) else 500
"""

FORMATTED = """\
# yaml-language-server: $schema=../schemas/policy.schema.json
api_version: policy-engine/v1   # the format
name: messy
version: 1
params:
  heat_cap: 6%          # of equity
  symbol_cap: 1_500
strategies:
  SCALPER: {enabled: true, max_trades: 2}
rules:
# a comment before the first rule
  - id: trades
    require: strategy.active_trades < strategy.max_trades     # the seed's limit
  - id: heat
    limit: params.heat_cap * portfolio.equity - portfolio.heat
    when: "intent.side == 'long' and not intent.reduce_only"
    on_exceed: clip
  - id: symbol
    limit: params.symbol_cap - symbol.heat if intent.symbol in ['BTC-USD', "ETH-USD"] else 500
"""


def test_the_layout_is_canonical_comments_and_literal_spelling_kept() -> None:
    assert format_policy(MESSY) == FORMATTED
    assert format_policy(FORMATTED) == FORMATTED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policies_are_formatted(path: Path) -> None:
    text = path.read_text("utf-8")
    assert format_policy(text) == text


def test_fmt_check_names_the_files_that_would_change(tmp_path: Path) -> None:
    (tmp_path / "messy.yaml").write_text(MESSY)
    (tmp_path / "clean.yaml").write_text(FORMATTED)
    (tmp_path / "ci.yml").write_text("on: push\njobs: {test: {runs-on: ubuntu-latest}}\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"would reformat {tmp_path / 'messy.yaml'}",
        "1 file would be reformatted, 1 unchanged",
    ]
    assert (tmp_path / "messy.yaml").read_text() == MESSY  # --check writes nothing
    result = runner.invoke(cli, ["fmt", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "messy.yaml").read_text() == FORMATTED
    assert (tmp_path / "ci.yml").read_text().startswith("on: push")  # not a policy: untouched
    assert runner.invoke(cli, ["fmt", "--check", str(tmp_path)]).exit_code == 0
    (tmp_path / "broken.yaml").write_text("api_version: policy-engine/v1\nrules: [\n")
    assert runner.invoke(cli, ["fmt", str(tmp_path)]).exit_code == 2


def test_the_bundled_policies_pass_fmt_check() -> None:
    result = CliRunner().invoke(cli, ["fmt", "--check", str(ROOT / "policies")])
    assert result.exit_code == 0, result.stdout


def test_a_change_of_meaning_is_refused() -> None:
    assert not same_meaning(FORMATTED, FORMATTED.replace("max_trades: 2", "max_trades: 3"))
    assert same_meaning(MESSY, FORMATTED)
    with pytest.raises(FormatError):
        format_policy("a: 1\n")  # not a policy


def _noisy(text: str, rng: random.Random) -> str:
    """``text`` with redundant parentheses around random sub-expressions and random spaces
    around its tokens: the same AST, written untidily."""
    for _ in range(rng.randint(0, 4)):
        nodes = s.walk(parse_expression(text))
        node = rng.choice(nodes)
        text = f"{text[: node.start]}({text[node.start : node.end]}){text[node.end :]}"
    # spaces where the grammar allows them: around operators and brackets, never inside a
    # token (numbers, names, strings are kept whole by splitting on them)
    pieces = re.split(
        r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[A-Za-z_][\w.]*|[0-9][0-9_.]*%?)", text
    )
    out = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            piece = re.sub(
                r"\s*([()\[\],*/+\-<>=!]+)\s*",
                lambda m: " " * rng.randint(0, 2) + m.group(1) + " " * rng.randint(0, 2),
                piece,
            )
        out.append(piece)
    return "".join(out).strip()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(SHIPPED), rng=st.randoms(use_true_random=False))
def test_formatting_keeps_the_compiled_meaning_and_is_idempotent(
    which: Path, rng: random.Random
) -> None:
    data = yaml.safe_load(which.read_text("utf-8"))
    for container, key in list(expression_slots(data)):
        if isinstance(container[key], str):
            container[key] = _noisy(container[key], rng)
    untidy = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    formatted = format_policy(untidy)
    before, after = load_policy_text(untidy), load_policy_text(formatted)
    assert semantic_diff(before.checked, after.checked) == []
    assert [s.unparse(r.expr) for r in before.checked.rules] == [
        s.unparse(r.expr) for r in after.checked.rules
    ]
    assert [r.when and s.unparse(r.when) for r in before.checked.rules] == [
        r.when and s.unparse(r.when) for r in after.checked.rules
    ]
    assert format_policy(formatted) == formatted


def test_reformatting_a_mode_when_is_no_change_of_meaning() -> None:
    """Found by the property test: the semantic diff compared a mode's `when` by its text, so
    `policy fmt` on `portfolio.drawdown>=5%` looked like a change needing a version bump."""
    text = (ROOT / "policies" / "portfolio.yaml").read_text("utf-8")
    untidy = text.replace('"portfolio.drawdown >= 5%"', '"(portfolio.drawdown)>=5%"')
    assert untidy != text
    old, new = load_policy_text(untidy), load_policy_text(format_policy(untidy))
    assert semantic_diff(old.checked, new.checked) == []
