"""`policy verify` on issue 23's names: notional and unrealized P&L have exact solver models
(a notional cap's counterexample replays in the engine), a position an intent names has none
(an honest `unknown`, never a wrong `proved`)."""

from __future__ import annotations

from pathlib import Path

from policy_engine.engine.policy import load_policy
from policy_engine.verify import BUILTIN, verify

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook"


def test_a_notional_cap_is_decided_and_an_intent_without_notional_is_the_counterexample() -> None:
    results = {
        r.property: r
        for r in verify(load_policy(COOKBOOK / "gross_exposure.yaml"), list(BUILTIN), 60)
    }
    assert {k: r.status for k, r in results.items() if k != "never-errors"} == dict.fromkeys(
        [k for k in BUILTIN if k != "never-errors"], "proved"
    )
    errors = results["never-errors"]
    assert errors.status == "violated"  # by design: an order without a notional is refused
    (case,) = errors.cases
    assert "requested_notional_abs" not in case.intent
    assert case.decision["decision_code"] == "rejected_eval_error"


def test_a_drawdown_from_marks_is_proved_and_a_position_is_unknown() -> None:
    marks = verify(load_policy(COOKBOOK / "security_drawdown.yaml"), list(BUILTIN), 60)
    assert {r.property: r.status for r in marks} == dict.fromkeys(BUILTIN, "proved")
    positions = verify(load_policy(COOKBOOK / "positions_by_id.yaml"), ["never-errors"], 60)
    assert [r.status for r in positions] == ["unknown"]
    assert "position_id" in positions[0].reason
