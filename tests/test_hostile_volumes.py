"""Hostile volumes are refused by a budget with a clear diagnostic, before the work they
would cost: the behaviour is asserted here, the speed in benchmarks/hostile.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine import PolicyError, load_policy_text
from policy_engine.cli import cli
from policy_engine.document.budgets import MAX_DECLARED, MAX_KEYS, MAX_PLACEHOLDERS

from support.hostile import fmt_inputs, many_inputs, unknown_keys, unknown_placeholders


def _codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "h.yaml")
    return [x.code for x in info.value.diagnostics]


def test_inputs_have_a_budget() -> None:
    """`inputs:` is limited like scopes, windows and latches (each is validated per intent)."""
    assert load_policy_text(many_inputs(MAX_DECLARED), "h.yaml").name == "hostile"
    with pytest.raises(PolicyError, match=rf"101 inputs \(the budget is {MAX_DECLARED}\)"):
        load_policy_text(many_inputs(MAX_DECLARED + 1), "h.yaml")


def test_twenty_thousand_inputs_are_refused_before_the_yaml_is_composed() -> None:
    """The block section is counted on the text: the rest of the file is never parsed (its
    unclosed bracket would be a PT101 if it were)."""
    assert _codes(many_inputs(20_000) + "broken: [\n") == ["PT116"]


def test_twenty_thousand_unknown_keys_in_one_rule_are_one_diagnostic() -> None:
    """A mapping over the key budget is one PT116, not 20,000 schema errors."""
    with pytest.raises(PolicyError) as info:
        load_policy_text(unknown_keys(20_000), "h.yaml")
    (only,) = info.value.diagnostics
    assert only.code == "PT116" and f"the budget is {MAX_KEYS}" in only.message
    assert (only.span.line, only.span.col) == (5, 5)


def test_placeholders_in_one_message_have_a_budget() -> None:
    """Up to the budget every placeholder is checked (each its own PT306); past it, one
    PT116 at the message and none is parsed (70,000 of them took a second)."""
    assert _codes(unknown_placeholders(MAX_PLACEHOLDERS)) == ["PT306"] * MAX_PLACEHOLDERS
    assert _codes(unknown_placeholders(70_000)) == ["PT116"]


@pytest.mark.parametrize("name", sorted(fmt_inputs()))
def test_fmt_has_the_loaders_guards(name: str, tmp_path: Path) -> None:
    """`policy fmt` refuses what the loader refuses (nesting, size) with its diagnostic,
    never an internal RecursionError, and leaves the file as it was."""
    path = tmp_path / "p.yaml"
    path.write_text(fmt_inputs()[name])
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["fmt", str(path)])
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "RecursionError" not in result.output
    expected = "PT002" if name == "oversized" else "PT103"
    assert f"{path}:" in result.stderr and expected in result.stderr
    assert path.read_bytes() == before
