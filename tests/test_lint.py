"""Domain lints (PT401..PT413, PT420) and the abstract evaluator behind them.

The golden tests in test_cli.py pin one triggering policy per code with exact
output; these tests probe each lint's edges: when it must stay silent, and the
variants the golden policy does not show.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine import PolicyError, load_policy_text
from policy_engine.analysis.check import check_bytes, check_file
from policy_engine.analysis.diff import semantic_diff, version_check
from policy_engine.analysis.fold import fold
from policy_engine.lang import syntax as s
from policy_engine.lang.abstract import TOP, Interval, ValueSet
from policy_engine.lang.parser import parse_expression

ROOT = Path(__file__).resolve().parent.parent
HEADER = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def findings(body: str, version: int = 1) -> list[tuple[str, int, int]]:
    """(code, line, col) of every diagnostic for a policy made of HEADER + ``body``."""
    text = HEADER.replace("version: 1", f"version: {version}") + textwrap.dedent(body)
    result = check_bytes(text.encode(), "t.yaml")
    return [(x.code, x.span.line, x.span.col) for x in result.diagnostics]


def codes(body: str) -> list[str]:
    return [c for c, _, _ in findings(body)]


def messages(body: str) -> list[str]:
    text = HEADER + textwrap.dedent(body)
    return [x.format() for x in check_bytes(text.encode(), "t.yaml").diagnostics]


# --- the abstract evaluator -------------------------------------------------------------


def folded(text: str, **params: float) -> object:
    def bind(name: s.Name) -> object:
        if name.path[0] == "params":
            v = params[name.path[1]]
            return Interval(v, v)
        if name.path == ("portfolio", "drawdown"):
            return Interval(0.0, 1.0)
        if name.path[1] in ("heat", "equity"):
            return Interval(0.0, float("inf"))
        return TOP

    return fold(parse_expression(text), bind)  # type: ignore[arg-type]


def test_fold_constants_and_intervals() -> None:
    """Params and literals fold to points; live values keep their natural range."""
    assert folded("params.a * 2 + 1", a=3) == Interval(7.0, 7.0)
    assert folded("params.cap - symbol.heat", cap=1500) == Interval(-float("inf"), 1500.0)
    assert folded("min(params.a, 0) - symbol.heat", a=5) == Interval(-float("inf"), 0.0)
    assert folded("clamp(portfolio.drawdown, 0.2, 0.5)") == Interval(0.2, 0.5)
    assert folded("abs(params.a)", a=-2) == Interval(2.0, 2.0)


def test_fold_booleans() -> None:
    """Comparisons decide when the intervals do not overlap, and stay open otherwise."""
    assert folded("portfolio.drawdown > 150%") == ValueSet(frozenset({False}))
    assert folded("portfolio.drawdown >= 0") == ValueSet(frozenset({True}))
    assert folded("portfolio.drawdown > 5%") == ValueSet(frozenset({True, False}))
    assert folded("not (1 < 2 < 3)") == ValueSet(frozenset({False}))
    assert folded("false and portfolio.drawdown > 0.1") == ValueSet(frozenset({False}))
    assert folded("true or portfolio.drawdown > 0.1") == ValueSet(frozenset({True}))
    assert folded('"a" in ["a", "b"]') == ValueSet(frozenset({True}))


def test_fold_division_by_a_range_holding_zero_is_unknown() -> None:
    """Dividing by something that may be zero is not folded (it is a runtime error)."""
    assert folded("1 / portfolio.equity") is TOP
    assert folded("params.a / 4", a=2) == Interval(0.5, 0.5)


def test_fold_zero_times_infinity_is_zero() -> None:
    """A zero multiplier wins over an unbounded value (risk_off scales every cap to 0)."""
    assert folded("0 * portfolio.equity") == Interval(0.0, 0.0)


# --- bundled policies --------------------------------------------------------------------


def test_bundled_policies_have_no_findings() -> None:
    """Every bundled policy is clean: no error and no warning."""
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        if path.name.endswith("_test.yaml"):
            continue  # the policies' decision tests, not policies
        result = check_file(str(path))
        assert result.diagnostics == [], [str(x) for x in result.diagnostics]
        assert result.rules > 0


# --- PT401 / PT402 -----------------------------------------------------------------------


def test_pt401_silent_when_the_condition_can_hold() -> None:
    """A `when` that depends on live values is not flagged."""
    assert (
        codes(
            """
        rules:
          - id: a
            when: portfolio.drawdown > 5%
            require: intent.reduce_only
        """
        )
        == []
    )


def test_pt402_only_with_later_rules() -> None:
    """An unconditional reject as the last rule is a halt switch, not dead code."""
    halt_last = """
        rules:
          - id: exits
            allow: intent.risk_reducing
          - id: halt
            require: false
        """
    assert codes(halt_last) == []
    halt_first = """
        rules:
          - id: halt
            require: 1 > 2
          - id: exits
            allow: intent.risk_reducing
        """
    assert findings(halt_first) == [("PT402", 7, 14)]


def test_pt402_skips_conditional_and_shadow_rules() -> None:
    """A reject with a real `when`, or in warn (shadow) mode, blocks nothing by itself."""
    assert (
        codes(
            """
        rules:
          - id: halt-in-crisis
            when: portfolio.drawdown > 20%
            require: false
          - id: shadow-halt
            enforcement: warn
            require: false
          - id: b
            require: intent.reduce_only
        """
        )
        == []
    )


def test_pt402_allow_everything_and_negative_limit() -> None:
    """`allow: true` and a reject limit below zero also make later rules unreachable."""
    assert codes(
        """
        rules:
          - id: all
            allow: true
          - id: b
            require: intent.reduce_only
        """
    ) == ["PT402"]
    assert codes(
        """
        rules:
          - id: nothing
            limit: -1
          - id: b
            require: intent.reduce_only
        """
    ) == ["PT402"]


# --- PT403 / PT404 -----------------------------------------------------------------------


def test_pt403_ignores_rules_that_differ_in_when_or_kind() -> None:
    """Two rules with the same expression but different `when` are not duplicates."""
    assert (
        codes(
            """
        rules:
          - id: a
            require: intent.reduce_only
          - id: b
            when: portfolio.drawdown > 5%
            require: intent.reduce_only
        """
        )
        == []
    )


def test_pt404_counts_message_placeholders_and_envelope() -> None:
    """A param read only in a message or in the envelope is used."""
    assert (
        codes(
            """
        params:
          shown: 3
          cap: 2
        envelope:
          max_additional_positions: params.cap - portfolio.active_trades
        rules:
          - id: a
            require: intent.reduce_only
            message: "at most {params.shown}"
        """
        )
        == []
    )


# --- PT405 / PT406 -----------------------------------------------------------------------


def test_pt405_reversed_and_not_in() -> None:
    """`"SCALPR" == intent.strategy` and `not in [...]` are checked too."""
    body = """
        strategies:
          SCALPER: {max_trades: 1}
        rules:
          - id: a
            when: '"SCALPR" == intent.strategy or strategy.name not in ["MOMENTUM"]'
            require: strategy.active_trades < strategy.max_trades
        """
    assert findings(body) == [("PT405", 9, 12), ("PT405", 9, 65)]


def test_pt405_silent_without_declared_strategies() -> None:
    """A policy that declares no strategies cannot misspell one."""
    assert (
        codes(
            """
        rules:
          - id: a
            when: intent.strategy == "ANY"
            require: intent.reduce_only
        """
        )
        == []
    )


def test_pt406_missing_key_a_rule_reads() -> None:
    """A strategy without the `max_trades` a rule reads fails closed at runtime: say so."""
    out = messages(
        """
        strategies:
          SCALPER: {max_trades: 2}
          MOMENTUM: {max_risk: 500}
          OLD: {enabled: false}
        rules:
          - id: max-trades
            require: strategy.active_trades < strategy.max_trades
        """
    )
    assert out == [
        "t.yaml:7:3: PT406 strategy `MOMENTUM` has no `max_trades`, which rule `max-trades` "
        "reads: its intents fail closed"
    ]


# --- PT407 / PT408 -----------------------------------------------------------------------


def test_pt407_flatten_only_switched_off() -> None:
    """risk_off may not turn off the flatten-only of defensive."""
    body = """
        modes:
          normal: {}
          defensive: {flatten_only: true, when: "portfolio.drawdown >= 5%"}
          risk_off: {flatten_only: false, when: "portfolio.drawdown >= 10%"}
        rules:
          - id: a
            require: not mode.flatten_only
        """
    assert findings(body) == [("PT407", 8, 28)]


def test_pt407_threshold_written_the_other_way_round() -> None:
    """`5% <= portfolio.drawdown` is read as a threshold too; equal thresholds are flagged."""
    body = """
        modes:
          normal: {}
          defensive: {risk_multiplier: 0.5, when: "5% <= portfolio.drawdown"}
          risk_off: {risk_multiplier: 0, when: "portfolio.drawdown >= 0.05"}
        rules:
          - id: a
            limit: 1000 * mode.risk_multiplier
        """
    assert codes(body) == ["PT407"]


def test_pt408_envelope_value() -> None:
    """An envelope cap that grows in defensive is flagged at the envelope expression."""
    body = """
        modes:
          normal: {risk_multiplier: 1, slots: 2}
          defensive: {risk_multiplier: 1, slots: 4, when: "portfolio.drawdown >= 5%"}
        envelope:
          max_additional_positions: mode.slots - portfolio.active_trades
        rules:
          - id: a
            require: intent.reduce_only
        """
    assert findings(body) == [("PT408", 9, 29)]


def test_pt408_silent_when_caps_shrink() -> None:
    """The bundled portfolio scaling (1.0, 0.5, 0.0) is tightening: no finding."""
    result = check_file(str(ROOT / "policies" / "portfolio.yaml"))
    assert [x.code for x in result.diagnostics] == []


# --- PT409 / PT410 -----------------------------------------------------------------------


def test_pt409_uses_per_symbol_and_per_cohort_config() -> None:
    """Caps read from `symbols:` and cohort attributes are compared member by member."""
    body = """
        symbols:
          BTC-USD: {cap: 3000}
          ETH-USD: {cap: 1000}
        cohorts:
          L1: {symbols: [BTC-USD, ETH-USD], cap: 2000}
        rules:
          - id: symbol-cap
            limit: symbol.cap - symbol.heat
          - id: cohort-cap
            limit: cohort.cap - cohort.heat
        """
    assert findings(body) == [("PT409", 9, 18)]


def test_pt410_same_symbol_twice_in_one_cohort() -> None:
    """A symbol repeated inside one cohort is reported too."""
    out = messages(
        """
        cohorts:
          L1: [BTC-USD, BTC-USD]
        rules:
          - id: a
            limit: 100 - cohort.heat
        """
    )
    assert out == [
        "t.yaml:6:17: PT410 symbol `BTC-USD` is again in cohort `L1`: only the first cohort counts it"
    ]


# --- PT411 / PT412 / PT413 ----------------------------------------------------------------


def test_pt411_ratio_form_and_percent_written_params() -> None:
    """`heat / equity < params.cap` is a fraction too; a param written `6%` is never PT411."""
    assert findings(
        """
        params:
          heat_cap: 6
        rules:
          - id: a
            require: portfolio.heat / portfolio.equity < params.heat_cap
        """
    ) == [("PT411", 6, 13)]
    assert (
        codes(
            """
        params:
          heat_cap: 6%
        rules:
          - id: a
            require: portfolio.heat / portfolio.equity < params.heat_cap
        """
        )
        == []
    )


def test_pt411_silent_for_a_ratio_of_exactly_one() -> None:
    """`tradable_balance_ratio: 1` (all of the equity) is a normal ratio; 1.5 is not."""
    body = """
        params:
          tradable_balance_ratio: %s
        rules:
          - id: a
            limit: params.tradable_balance_ratio * portfolio.equity - portfolio.heat
        """
    assert codes(body % "1") == []
    assert codes(body % "1.0") == []
    assert codes(body % "1.5") == ["PT411"]


def test_pt412_in_config_sections_only() -> None:
    """Percentages in params, strategies, symbols, cohorts and modes count; descriptions do not."""
    body = """
        description: 500% sure
        strategies:
          SCALPER: {max_trades: 1, size: 120%}
        rules:
          - id: a
            require: strategy.active_trades < strategy.max_trades
        """
    assert findings(body) == [("PT412", 7, 34)]


def test_pt413_silent_for_a_positive_cap_and_flags_min_zero() -> None:
    """A cap that can be positive in some mode is fine; `min(cap, 0) - heat` is not."""
    assert (
        codes(
            """
        rules:
          - id: a
            limit: 1500 * mode.risk_multiplier - symbol.heat
            on_exceed: clip
        """
        )
        == []
    )
    assert codes(
        """
        rules:
          - id: a
            limit: min(1500, 0) - symbol.heat
            on_exceed: clip
        """
    ) == ["PT413"]


# --- PT420 and the semantic diff ------------------------------------------------------------


def result_of(body: str, version: int) -> object:
    text = HEADER.replace("version: 1", f"version: {version}") + textwrap.dedent(body)
    return check_bytes(text.encode(), f"v{version}.yaml")


def test_version_going_down_is_pt420() -> None:
    """A lower version with changed content is PT420, saying it went down."""
    old = result_of("rules:\n  - id: a\n    limit: 100\n", 3)
    new = result_of("rules:\n  - id: a\n    limit: 200\n", 2)
    found = version_check(old, new)  # type: ignore[arg-type]
    assert [x.format() for x in found] == [
        "v2.yaml:3:10: PT420 the policy changed but `version` went down (3 -> 2); bump it to 4"
    ]


def test_semantic_diff_lists_removed_rules_and_changed_expressions() -> None:
    """Removed rules, changed limits and changed `when` are each one line."""
    old = result_of(
        """
        rules:
          - id: a
            limit: 100
          - id: gone
            require: intent.reduce_only
        """,
        1,
    )
    new = result_of(
        """
        rules:
          - id: a
            when: portfolio.drawdown < 5%
            limit: 200
        """,
        2,
    )
    diff = semantic_diff(old.checked, new.checked)  # type: ignore[attr-defined]
    assert diff == [
        "version 1 -> 2",
        "- rule `gone` removed",
        "~ rule `a` expression: `limit: 100` -> `limit: 200`",
        "~ rule `a` when: `always` -> `portfolio.drawdown < 0.05`",
    ]


# --- robustness ------------------------------------------------------------------------------

PORTFOLIO = (ROOT / "policies" / "portfolio.yaml").read_text()


@settings(max_examples=40, deadline=None)
@given(
    heat=st.sampled_from(["6%", "0", "-3", "600%", "6", "1e9", "0.000001"]),
    symbol=st.sampled_from(["1_500", "0", "-1", "3000", "99999999"]),
    mult=st.sampled_from(["1.0", "0.5", "2", "0"]),
    when=st.sampled_from(["portfolio.drawdown >= 5%", "false", "true", "portfolio.drawdown > 2"]),
)
def test_lints_never_crash_on_edited_portfolio(
    heat: str, symbol: str, mult: str, when: str
) -> None:
    """Whatever values a risk owner types, the lints never raise, and loading agrees."""
    text = (
        PORTFOLIO.replace("heat_cap: 6%", f"heat_cap: {heat}")
        .replace("symbol_cap: 1_500", f"symbol_cap: {symbol}")
        .replace("defensive: {risk_multiplier: 0.5", f"defensive: {{risk_multiplier: {mult}")
        .replace('"portfolio.drawdown >= 5%"', f'"{when}"')
    )
    result = check_bytes(text.encode(), "p.yaml")
    assert not any(x.code == "PT499" for x in result.diagnostics)
    core = [x for x in result.diagnostics if int(x.code[2]) < 4]
    try:  # policy-check and load_policy agree on what loads
        load_policy_text(text, "p.yaml")
        assert core == []
    except PolicyError as exc:
        assert [x.format() for x in exc.diagnostics] == [x.format() for x in core]


def test_pt401_mode_name_of_an_undeclared_mode_never_holds() -> None:
    """Only a declared mode can be in force (an override naming another is refused), so a
    rule waiting for an undeclared `risk_off` never fires; a declared one can."""
    assert codes(
        """
        rules:
          - id: halt-when-overridden
            when: mode.name == "risk_off"
            require: intent.risk_reducing
        """
    ) == ["PT401"]
    assert (
        codes(
            """
        modes:
          normal: {}
          risk_off: {risk_multiplier: 0}
        rules:
          - id: halt-when-overridden
            when: mode.name == "risk_off"
            require: intent.risk_reducing
        """
        )
        == []
    )
    assert codes(
        """
        rules:
          - id: typo
            when: mode.name == "risk-off"
            require: intent.risk_reducing
        """
    ) == ["PT401"]


def test_semantic_diff_reports_top_level_settings() -> None:
    """A changed `min_risk_abs` or description appears in the diff."""
    old = result_of("min_risk_abs: 10\nrules:\n  - id: a\n    limit: 100\n", 1)
    new = result_of("min_risk_abs: 25\nrules:\n  - id: a\n    limit: 100\n", 2)
    diff = semantic_diff(old.checked, new.checked)  # type: ignore[attr-defined]
    assert diff == ["version 1 -> 2", "~ min_risk_abs: 10 -> 25"]


def test_pt411_leaves_named_multiples_alone() -> None:
    """`max_leverage: 2` times the equity is a multiple on purpose, not a slipped percentage."""
    assert (
        codes(
            """
        params:
          max_leverage: 2
        rules:
          - id: gross
            require: portfolio.heat < params.max_leverage * portfolio.equity
        """
        )
        == []
    )
