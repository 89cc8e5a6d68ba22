"""The lints for slips of the pen (PT414..PT418, issue 12): when each fires, and when it
must stay silent. The golden files in tests/golden/lint/ pin each one's exact output."""

from __future__ import annotations

import textwrap

from policy_engine.analysis.check import check_bytes

HEADER = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def findings(body: str) -> list[tuple[str, int, int]]:
    text = HEADER + textwrap.dedent(body)
    return [
        (x.code, x.span.line, x.span.col) for x in check_bytes(text.encode(), "t.yaml").diagnostics
    ]


def codes(body: str) -> list[str]:
    return [c for c, _, _ in findings(body)]


def test_pt414_a_miswritten_percentage_is_reported_where_it_is_written() -> None:
    """Even when the policy fails to check (the type error is where it is used), the slip is
    reported at the constant: both lines, both codes."""
    body = """
    params:
      heat_cap: 6%%
    rules:
      - id: heat
        limit: params.heat_cap * portfolio.equity
    """
    assert findings(body) == [("PT414", 6, 13), ("PT302", 9, 12)]
    assert codes("params:\n  a: '6 %'\nrules: [{id: a, require: true}]\n") == [
        "PT404"
    ]  # quoted: text on purpose
    assert codes("params:\n  a: 6%\nrules: [{id: a, limit: params.a * portfolio.equity}]\n") == []


def test_pt415_only_a_count_against_its_bound_with_at_most() -> None:
    strategies = "strategies:\n  S: {max_trades: 2}\nrules:\n"
    assert codes(
        strategies + "  - {id: a, require: strategy.active_trades <= strategy.max_trades}\n"
    ) == ["PT415"]
    assert codes(
        strategies + "  - {id: a, require: strategy.max_trades >= strategy.active_trades}\n"
    ) == ["PT415"]
    assert codes(strategies + "  - {id: a, require: portfolio.open_positions <= 4}\n") == ["PT415"]
    assert (
        codes(strategies + "  - {id: a, require: strategy.active_trades < strategy.max_trades}\n")
        == []
    )
    assert (
        codes(strategies + "  - {id: a, require: portfolio.heat <= 4000}\n") == []
    )  # risk, not a count
    assert (
        codes(strategies + "  - {id: a, require: true, when: portfolio.active_trades <= 3}\n") == []
    )
    # under a `not` the comparison is no gate's bound (and this one is backwards: PT418)
    assert codes(strategies + "  - {id: a, require: not (portfolio.active_trades <= 3)}\n") == [
        "PT418"
    ]


def test_pt416_a_drawdown_compared_with_a_whole_number() -> None:
    rules = "rules:\n  - {id: a, require: intent.reduce_only or %s}\n"
    assert codes(rules % "portfolio.drawdown >= 5") == ["PT416"]
    assert codes(rules % "10 < portfolio.drawdown") == ["PT416"]
    assert codes(rules % "portfolio.drawdown >= 5%") == []
    assert codes(rules % "portfolio.drawdown >= 0.05") == []
    assert codes(rules % "portfolio.drawdown * 100 >= 5") == []
    with_param = "params:\n  dd: %s\n" + rules % "portfolio.drawdown >= params.dd"
    assert codes(with_param % "5") == ["PT416"]
    assert codes(with_param % "5%") == []


def test_pt417_division_by_a_live_value_unless_guarded() -> None:
    rule = "rules:\n  - id: a\n    require: %s\n"
    assert codes(rule % "portfolio.active_risk / portfolio.open_positions < 800") == ["PT417"]
    assert codes(rule % "1000 / strategy.heat > 1") == ["PT417"]
    assert (
        codes(
            rule
            % "portfolio.open_positions == 0 or portfolio.active_risk / portfolio.open_positions < 800"
        )
        == []
    )
    assert (
        codes(
            rule
            % "(portfolio.active_risk / portfolio.open_positions if portfolio.open_positions > 0 else 0) < 800"
        )
        == []
    )
    assert codes(rule % "portfolio.active_risk / max(1, portfolio.open_positions) < 800") == []
    assert (
        codes(rule % "portfolio.active_risk / portfolio.equity < 50%") == []
    )  # equity is not a book count
    guarded = "rules:\n  - id: a\n    require: portfolio.active_risk / portfolio.open_positions < 800\n    when: portfolio.open_positions > 0\n"
    assert codes(guarded) == []


def test_pt418_a_rule_backwards_on_an_empty_book() -> None:
    strategies = (
        "strategies:\n  S: {max_trades: 2}\n  OFF: {enabled: false, max_trades: 0}\nrules:\n"
    )
    assert codes(strategies + "  - {id: a, require: portfolio.open_positions > 0}\n") == ["PT418"]
    assert codes(strategies + "  - {id: a, limit: portfolio.heat - 100}\n") == ["PT418"]
    # an allow that lets exits through, then a deliberate halt: a switch, not a slip
    halt = "  - {id: exits, allow: intent.risk_reducing}\n  - {id: halt, require: false}\n"
    assert codes(strategies + halt) == []
    # a strategy configured to take nothing is its configuration, not the rule's direction
    assert (
        codes(
            "strategies:\n  S: {max_trades: 0}\nrules:\n  - {id: a, require: strategy.active_trades < strategy.max_trades}\n"
        )
        == []
    )
    # a rule that does not apply on an empty book in normal mode is not blamed
    assert (
        codes(
            strategies
            + "  - {id: a, require: portfolio.open_positions > 0, when: portfolio.drawdown > 5%}\n"
        )
        == []
    )
    # shadow rules block nothing
    assert (
        codes(
            strategies + "  - {id: a, require: portfolio.open_positions > 0, enforcement: warn}\n"
        )
        == []
    )
