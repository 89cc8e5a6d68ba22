"""The lints of what a policy declares (PT430..PT435): where each must stay silent, and the
variants its golden policy (tests/golden/lint/PT43x.yaml) does not show."""

from __future__ import annotations

import textwrap

from policy_engine.analysis.check import check_bytes

HEADER = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def codes(body: str) -> list[str]:
    text = HEADER + textwrap.dedent(body)
    return [x.code for x in check_bytes(text.encode(), "t.yaml").diagnostics]


def test_pt434_is_silent_where_has_guards_the_read() -> None:
    head = "inputs:\n  reward: {type: number, default: null}\n"
    guarded = [
        "rules: [{id: r, when: has(intent.reward), require: intent.reward > intent.risk}]",
        "rules: [{id: r, require: not has(intent.reward) or intent.reward > intent.risk}]",
        "rules: [{id: r, require: has(intent.reward) and intent.reward > intent.risk}]",
        "rules: [{id: r, limit: '(intent.reward if has(intent.reward) else 0) + 5'}]",
    ]
    for rules in guarded:
        assert codes(head + rules + "\n") == [], rules
    assert codes(head + "rules: [{id: r, require: intent.reward > intent.risk}]\n") == ["PT434"]
    required = "inputs:\n  reward: {type: number, required: true}\n"
    assert codes(required + "rules: [{id: r, require: intent.reward > 1}]\n") == []


def test_pt431_counts_every_kind_of_read() -> None:
    assert (
        codes(
            """\
        inputs:
          desk: {type: string, default: null}
        scopes:
          desk: {key: intent.desk}
        windows:
          asks: {count: requests, per: desk, over: 1h}
          calls: {count: requests, per: portfolio, over: 1h}
        latches:
          busy: {when: portfolio.calls > 100, until: rollover}
        modes:
          normal: {}
          calm: {risk_multiplier: 0.5, when: latch.busy}
        rules:
          - id: r
            when: has(intent.desk)
            require: desk.asks < 10
        """
        )
        == []
    )
    keyed = (
        "inputs:\n  venue: {type: string, default: null}\nscopes:\n  venue: {key: intent.venue}\n"
    )
    assert codes(keyed + "rules: [{id: r, when: has(intent.venue), limit: venue.heat + 5}]\n") == []
    assert codes(
        """\
        scopes:
          desk: {key: intent.playbook_id}
        latches:
          busy: {when: portfolio.heat > 100, until: rollover}
        rules: [{id: r, require: "true"}]
        """
    ) == ["PT431", "PT431"]


def test_pt432_and_pt433_only_for_conditions_that_cannot_change() -> None:
    live = "latches:\n  l: {when: portfolio.day_pnl < -100, until: rollover}\n"
    assert codes(live + "rules: [{id: r, require: not latch.l}]\n") == []
    always = "latches:\n  l: {when: portfolio.heat >= 0 or true, until: reset}\n"
    assert codes(always + "rules: [{id: r, require: not latch.l}]\n") == ["PT432"]


def test_pt435_only_for_bounds_that_cannot_be_crossed() -> None:
    head = "windows:\n  w: {count: approvals, per: strategy, over: 1h}\n"
    head += "strategies:\n  S: {max_trades: 3}\n"
    assert codes(head + "rules: [{id: r, require: strategy.w < 3}]\n") == []
    assert codes(head + "rules: [{id: r, require: strategy.w < 0}]\n") == ["PT435"]
    assert codes(head + "rules: [{id: r, when: strategy.w >= 0, require: 'false'}]\n") == ["PT435"]
    # an aggregate of realized P&L may be negative: a bound below 0 matters
    head = "windows:\n  pnl: {count: closes, per: strategy, over: 1h, sum: realized_pnl}\n"
    head += "strategies:\n  S: {max_trades: 3}\n"
    assert codes(head + "rules: [{id: r, require: strategy.pnl > -100}]\n") == []
    # ... and so may a sum of fees (a rebate); one of risk or notional, and a drawdown, may not
    head = "windows:\n  fees: {count: fills, per: strategy, over: 1h, sum: fee}\n"
    head += "  risk: {count: approvals, per: strategy, over: 1h, max: risk}\n"
    head += "  traded: {count: fills, per: strategy, over: 1h, sum: notional}\n"
    head += "  fall: {count: closes, per: strategy, over: 1h, drawdown: realized_pnl}\n"
    head += "strategies:\n  S: {max_trades: 3}\n"
    assert codes(head + "rules: [{id: r, require: strategy.fees > -1}]\n") == ["PT431"] * 3
    rules = "rules:\n  - {id: r, require: strategy.risk >= 0 and strategy.fall > -1}\n"
    rules += "  - {id: s, require: strategy.fees < 1}\n"
    rules += "  - {id: t, require: strategy.traded < 0}\n"
    found = check_bytes((HEADER + head + rules).encode(), "t.yaml").diagnostics
    assert [x.message for x in found if x.code == "PT435"] == [
        "`strategy.risk >= 0` always holds: `strategy.risk` is never below 0, so this bound "
        "cannot matter",
        "`strategy.fall > -1` always holds: `strategy.fall` is never below 0, so this bound "
        "cannot matter",
        "`strategy.traded < 0` never holds: `strategy.traded` is never below 0, so this bound "
        "cannot matter",
    ]


def test_a_window_per_strategy_is_not_a_strategy_constant() -> None:
    """PT406 asks strategies for the constants rules read; a window is not one."""
    head = "windows:\n  w: {count: approvals, per: strategy, over: 1h}\n"
    head += "strategies:\n  S: {max_trades: 3}\n"
    assert codes(head + "rules: [{id: r, require: strategy.w < strategy.max_trades}]\n") == []


def test_pt430_only_beyond_a_day() -> None:
    head = "windows:\n  w: {count: approvals, per: portfolio, over: 24h}\n"
    assert codes(head + "rules: [{id: r, require: portfolio.w < 3}]\n") == []
    head = "windows:\n  w: {count: approvals, per: portfolio, over: 25h}\n"
    assert codes(head + "rules: [{id: r, require: portfolio.w < 3}]\n") == ["PT430"]


def test_the_semantic_diff_names_changed_declarations() -> None:
    from pathlib import Path

    from policy_engine.analysis.diff import semantic_diff

    old = (Path(__file__).resolve().parent.parent / "policies" / "day_trading.yaml").read_text()
    new = (
        old.replace("version: 1", "version: 2")
        .replace("over: 1h}", "over: 30m}")
        .replace('rollover: "17:00"', 'rollover: "16:00"')
        .replace("until: rollover", "until: reset")
        .replace("COINBASE: {cap: 2_500}", "COINBASE: {cap: 2_000}")
        .replace("  critical: {risk", "  critical2: {risk")
    )
    a = check_bytes(old.encode(), "a.yaml").checked
    b = check_bytes(new.encode(), "b.yaml").checked
    assert a is not None and b is not None
    assert semantic_diff(a, b) == [
        "version 1 -> 2",
        "- modes.critical (was {risk_multiplier: 0.25, flatten_only: false, when: "
        "portfolio.drawdown >= 0.06})",
        "+ modes.critical2 = {risk_multiplier: 0.25, flatten_only: false, when: "
        "portfolio.drawdown >= 0.06}",
        "~ scopes.venue.values: {BINANCE: {cap: 4000}, COINBASE: {cap: 2500}} -> "
        "{BINANCE: {cap: 4000}, COINBASE: {cap: 2000}}",
        "~ windows.trades_1h.over: 3600 -> 1800",
        "~ latches.daily_loss.until: rollover -> reset",
        "~ trading_day: rollover 17:00 America/New_York -> 16:00 America/New_York",
    ]
    lines = old.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("  defensive:"))
    lines[at], lines[at + 1] = lines[at + 1], lines[at]  # critical before defensive
    swapped = "".join(lines).replace("version: 1", "version: 2")
    c = check_bytes(swapped.encode(), "c.yaml").checked
    assert c is not None
    assert semantic_diff(a, c)[-1] == (
        "~ modes reordered (mildest first): normal > cautious > critical > defensive > "
        "risk_off (was normal > cautious > defensive > critical > risk_off)"
    )


def test_fmt_gives_a_latch_when_its_canonical_spacing() -> None:
    from policy_engine.document.formatter import format_policy

    text = HEADER + "latches:\n  l: {when: 'portfolio.heat>(5)', until: reset}\n"
    text += "rules: [{id: r, require: not latch.l}]\n"
    assert "when: 'portfolio.heat > 5'" in format_policy(text)
