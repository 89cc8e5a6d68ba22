"""Load-time refusals that keep a policy's meaning unambiguous."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from policy_engine import PolicyError, PortfolioIntent, load_policy_text

HEAD = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def _codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(HEAD + text, "p.yaml")
    return [d.format() for d in info.value.diagnostics]


def test_shadow_allow_is_refused() -> None:
    """An `allow` in warn mode would still skip later rules, so it is refused with its position."""
    lines = _codes("rules:\n  - id: a\n    allow: true\n    enforcement: warn\n")
    assert lines == [
        "p.yaml:7:18: PT111 `enforcement: warn` cannot apply to an `allow` rule (`a`): an allow never blocks"
    ]


def test_min_of_a_mixed_or_empty_list_is_refused() -> None:
    """`min`/`max` of one list need a list of numbers; a mixed or empty list is a type error."""
    lines = _codes(
        "params: {m: [1, true], n: [1, 2]}\n"
        "rules:\n  - id: a\n    require: min(params.m) > 0 and max(params.n) > 0 and min([]) > 0\n"
    )
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["PT302", "PT302"]
    assert "`params.m`" in lines[0] and "`[]`" in lines[1]


def test_sub_grid_risk_is_refused_not_rounded_to_zero() -> None:
    """A positive risk below 1e-6 would round to a zero-risk trade that still takes a slot."""
    base: dict[str, Any] = {
        "intent_id": "i",
        "strategy": "S",
        "symbol": "BTC-USD",
        "side": "long",
        "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }
    with pytest.raises(ValidationError, match="below the 1e-6 risk grid"):
        PortfolioIntent(**base, requested_risk_abs=1e-7)
    assert PortfolioIntent(**base, requested_risk_abs=0).requested_risk_abs == 0.0
    assert PortfolioIntent(**base, requested_risk_abs=1.0000004).requested_risk_abs == 1.0


@pytest.mark.parametrize("on_exceed", ["clip", "reject"])
def test_a_request_equal_to_the_headroom_up_to_float_noise_is_approved_in_full(
    on_exceed: str,
) -> None:
    """6% of 100,001 minus 600 is 5400.0599999999995 in floats: a request of 5400.06 is the
    headroom on the 1e-6 grid, approved in full (it was clipped from 5400.06 to 5400.06)."""
    from policy_engine import PortfolioSnapshot

    policy = load_policy_text(
        HEAD
        + "params: {heat_cap: 6%}\nrules:\n  - id: heat\n"
        + "    limit: params.heat_cap * portfolio.equity - portfolio.heat\n"
        + f"    on_exceed: {on_exceed}\n    message: capped at {{params.heat_cap * portfolio.equity - portfolio.heat}}\n"
    )
    snap = PortfolioSnapshot(equity=100_001, active_risk=600)
    base: dict[str, Any] = {
        "intent_id": "i",
        "strategy": "S",
        "symbol": "BTC-USD",
        "side": "long",
        "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }
    exact = policy.evaluate(PortfolioIntent(**base, requested_risk_abs=5400.06), snap)
    assert exact.decision_code == "approved_full" and exact.approved_risk_abs == 5400.06
    assert policy.interpret(PortfolioIntent(**base, requested_risk_abs=5400.06), snap)[0] == 0
    over = policy.evaluate(PortfolioIntent(**base, requested_risk_abs=5400.061), snap)
    assert not over.approved or over.approved_risk_abs == 5400.06
    # the numbers are shown on the grid, not with the float noise
    assert "capped at 5400.06" in over.reasons[0] and "5400.0599" not in " ".join(over.reasons)
