"""The seed's step 5.4 on the bundled policy: the third SCALPER trade is blocked."""

from datetime import UTC, datetime

from policy_engine import BucketState, PortfolioIntent, PortfolioSnapshot, load_policy

TS = datetime(2026, 1, 1, tzinfo=UTC)


def intent(strategy: str, n: int = 0) -> PortfolioIntent:
    return PortfolioIntent(
        intent_id=f"{strategy}-{n}",
        strategy=strategy,
        symbol="BTC-USD",
        side="long",
        requested_risk_abs=100,
        timestamp=TS,
    )


def test_third_scalper_blocked_momentum_still_approved() -> None:
    """With 0, 1, 2 active SCALPER trades only the third intent is rejected, with 2 and 2."""
    policy = load_policy("policies/strategy_limits.yaml")
    codes = []
    for active in (0, 1, 2):
        snap = PortfolioSnapshot(
            equity=100_000, strategies={"SCALPER": BucketState(active_trades=active)}
        )
        codes.append(policy.evaluate(intent("SCALPER", active), snap).decision_code)
    assert codes == ["approved_full", "approved_full", "rejected_strategy_limit"]
    snap = PortfolioSnapshot(equity=100_000, strategies={"SCALPER": BucketState(active_trades=2)})
    verdict = policy.evaluate(intent("SCALPER", 3), snap)
    assert verdict.rule_id == "strategy-max-trades"
    assert verdict.context["strategy.active_trades"] == 2
    assert verdict.context["strategy.max_trades"] == 2
    assert policy.evaluate(intent("MOMENTUM"), snap).decision_code == "approved_full"
