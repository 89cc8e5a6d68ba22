"""Issue 23's declarations under the budgets and the lints: `currencies:` is a counted
section, rules cost in the chains they decide (`applies_to`), `position.*` and `balance.*`
cost a lookup; PT438 flags a rule of cancels or modifies reading what a request never
carries; PT409 and PT415 leave cancel-only rules alone (PT402, PT403, PT418: test_lint.py,
test_slip_lints.py)."""

from __future__ import annotations

import pytest

from policy_engine import PolicyError, load_policy_text
from policy_engine.analysis.check import check_bytes
from policy_engine.document.budgets import MAX_COST, MAX_DECLARED, evaluation_cost

HEAD = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def findings(text: str) -> list[tuple[str, str]]:
    return [(x.code, x.message) for x in check_bytes(text.encode(), "p.yaml").diagnostics]


def codes(text: str) -> list[str]:
    return [c for c, _m in findings(text)]


def _rules(n: int, applies_to: str, prefix: str) -> str:
    terms = " + ".join(["portfolio.heat"] * 60)  # about 121 units a rule
    return "".join(
        f"  - id: {prefix}{i}\n    applies_to: [{applies_to}]\n    require: {terms} >= {i}\n"
        for i in range(n)
    )


def test_rules_cost_in_the_chains_they_decide() -> None:
    # 30 intent rules and 30 cancel rules: each chain fits, together they would not
    text = HEAD + "rules:\n" + _rules(30, "intent", "i") + _rules(30, "cancel", "c")
    total, parts = evaluation_cost(load_policy_text(text).checked)
    assert total <= MAX_COST < 2 * total
    assert all(p.startswith("i") for p, _c in parts)  # ties: the intent chain, first
    # intent and modify rules run together for a modify that grows its order: over budget
    grow = HEAD + "rules:\n" + _rules(30, "intent", "i") + _rules(30, "modify", "m")
    with pytest.raises(PolicyError) as info:
        load_policy_text(grow, "p.yaml")
    assert [x.code for x in info.value.diagnostics] == ["PT116"]


def test_a_position_or_balance_name_costs_its_lookup() -> None:
    def cost(expr: str) -> int:
        text = f"{HEAD}currencies: [USD]\nrules:\n  - id: r\n    require: {expr}\n"
        return evaluation_cost(load_policy_text(text).checked)[0]

    assert cost("balance.USD.free > 0") == cost("portfolio.heat > 0") + 1
    assert cost("balance.quote.locked > 0") == cost("portfolio.heat > 0") + 1
    assert cost("position.size > 0") == cost("portfolio.heat > 0") + 1
    assert cost("group.count > 0") == cost("portfolio.heat > 0")


@pytest.mark.parametrize("style", ["block", "flow"])
def test_more_currencies_than_the_budget_are_refused(style: str) -> None:
    names = [f"C{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(MAX_DECLARED + 1)]
    listed = (
        "".join(f"  - {n}\n" for n in names) if style == "block" else f" [{', '.join(names)}]\n"
    )
    text = f"{HEAD}currencies:{'' if style == 'flow' else chr(10)}{listed}rules: []\n"
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    (only,) = info.value.diagnostics
    assert only.code == "PT116" and f"the budget is {MAX_DECLARED}" in only.message


@pytest.mark.parametrize(
    ("expr", "read"),
    [
        ("not intent.reduce_only", "intent.reduce_only"),
        ("not intent.risk_reducing", "intent.risk_reducing"),
        ("group.count <= 3", "group.count"),
    ],
)
@pytest.mark.parametrize("applies_to", ["[cancel]", "[modify]", "[cancel, modify]"])
def test_pt438_a_request_rule_reading_what_a_request_never_carries(
    expr: str, read: str, applies_to: str
) -> None:
    text = f"{HEAD}rules:\n  - id: r\n    applies_to: {applies_to}\n    require: {expr}\n"
    found = [m for c, m in findings(text) if c == "PT438"]
    assert len(found) == 1 and f"`{read}`" in found[0]
    # the same rule deciding intents too reads them rightly
    both = text.replace(f"applies_to: {applies_to}", "applies_to: [intent, cancel]")
    assert "PT438" not in codes(both)


def test_pt438_leaves_what_a_request_carries_alone() -> None:
    text = (
        f"{HEAD}rules:\n  - id: r\n    applies_to: [cancel]\n"
        "    require: intent.symbol != 'BTC-USD' and intent.risk < 100\n"
    )
    assert "PT438" not in codes(text)


def test_pt415_leaves_a_cancel_rule_alone_its_order_is_counted() -> None:
    rule = "    require: strategy.active_trades <= 3\n"
    assert "PT415" in codes(f"{HEAD}rules:\n  - id: r\n{rule}")
    assert "PT415" in codes(f"{HEAD}rules:\n  - id: r\n    applies_to: [modify]\n{rule}")
    assert "PT415" not in codes(f"{HEAD}rules:\n  - id: r\n    applies_to: [cancel]\n{rule}")


def test_pt409_compares_only_caps_of_intents() -> None:
    text = (
        f"{HEAD}symbols:\n  BTC-USD: {{}}\ncohorts:\n  L1: [BTC-USD]\nrules:\n"
        "  - id: cohort-cap\nAPPLIES    limit: 1000 - cohort.heat\n"
        "  - id: symbol-cap\n    limit: 1500 - symbol.heat\n"
    )
    assert "PT409" in codes(text.replace("APPLIES", ""))
    assert "PT409" not in codes(text.replace("APPLIES", "    applies_to: [cancel]\n"))


def test_pt402_and_pt413_name_what_a_request_rule_decides() -> None:
    halt = (
        f"{HEAD}rules:\n  - id: no-cancels\n    applies_to: [cancel]\n    require: false\n"
        "  - id: keep-btc\n    applies_to: [cancel]\n    require: intent.symbol != 'BTC-USD'\n"
        "  - id: heat\n    limit: 1000 - portfolio.heat\n"
    )
    (pt402,) = [m for c, m in findings(halt) if c == "PT402"]
    assert "rejects every cancel request that reaches it: the rule after it" in pt402
    clip = f"{HEAD}rules:\n  - id: m\n    applies_to: [intent, modify]\n    limit: 0\n    on_exceed: clip\n"
    (pt413,) = [m for c, m in findings(clip) if c == "PT413"]
    assert "rejects every intent or modify request that reaches it" in pt413
