"""Bad intents and snapshots are refused by validation, with a clear message, never approved."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from policy_engine import BucketState, PortfolioIntent, PortfolioSnapshot

GOOD: dict[str, Any] = {
    "intent_id": "i-1",
    "strategy": "SCALPER",
    "symbol": "BTC-USD",
    "side": "long",
    "requested_risk_abs": 100.0,
    "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


BAD_INTENTS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, fields, field named in the error, message fragment)
    ("nan-risk", {**GOOD, "requested_risk_abs": math.nan}, "requested_risk_abs", "finite number"),
    ("inf-risk", {**GOOD, "requested_risk_abs": math.inf}, "requested_risk_abs", "finite number"),
    (
        "nan-risk-string",
        {**GOOD, "requested_risk_abs": "nan"},
        "requested_risk_abs",
        "must be a number, not a string",
    ),
    # Strict types: nothing that merely converts (it would be journaled as something else).
    (
        "decimal-risk",
        {**GOOD, "requested_risk_abs": Decimal("1.5")},
        "requested_risk_abs",
        "must be a number, not a Decimal",
    ),
    (
        "string-risk",
        {**GOOD, "requested_risk_abs": "1.5"},
        "requested_risk_abs",
        "must be a number, not a string",
    ),
    ("bytes-strategy", {**GOOD, "strategy": b"SCALPER"}, "strategy", "valid string"),
    ("string-as-bool", {**GOOD, "reduce_only": "yes"}, "reduce_only", "valid boolean"),
    ("int-as-bool", {**GOOD, "reduce_only": 1}, "reduce_only", "valid boolean"),
    ("epoch-zero-timestamp", {**GOOD, "timestamp": 0}, "timestamp", "not an integer"),
    (
        "far-future-timestamp",
        {**GOOD, "timestamp": "9999-12-31T23:59:59Z"},
        "timestamp",
        "[2000-01-01, 2200-01-01)",
    ),
    (
        "overflowing-risk",
        {**GOOD, "requested_risk_abs": 1.7e302},
        "requested_risk_abs",
        "less than or equal to 1000000000000000",
    ),
    (
        "giant-int-risk",
        {**GOOD, "requested_risk_abs": 10**400},
        "requested_risk_abs",
        "at most 1e+15",
    ),
    (
        "negative-risk",
        {**GOOD, "requested_risk_abs": -1.0},
        "requested_risk_abs",
        "greater than or equal to 0",
    ),
    (
        "huge-risk",
        {**GOOD, "requested_risk_abs": 1e303},
        "requested_risk_abs",
        "less than or equal",
    ),
    ("bool-risk", {**GOOD, "requested_risk_abs": True}, "requested_risk_abs", "not a boolean"),
    ("risk-not-number", {**GOOD, "requested_risk_abs": "lots"}, "requested_risk_abs", "number"),
    (
        "nan-notional",
        {**GOOD, "requested_notional_abs": math.nan},
        "requested_notional_abs",
        "finite",
    ),
    (
        "negative-notional",
        {**GOOD, "requested_notional_abs": -5},
        "requested_notional_abs",
        "greater than or equal to 0",
    ),
    ("unknown-side", {**GOOD, "side": "buy"}, "side", "'long', 'short' or 'flat'"),
    ("side-wrong-case", {**GOOD, "side": "LONG"}, "side", "'long', 'short' or 'flat'"),
    ("missing-risk", _without("requested_risk_abs"), "requested_risk_abs", "Field required"),
    ("missing-strategy", _without("strategy"), "strategy", "Field required"),
    ("missing-timestamp", _without("timestamp"), "timestamp", "Field required"),
    ("missing-intent-id", _without("intent_id"), "intent_id", "Field required"),
    (
        "extra-field",
        {**GOOD, "requested_risk": 5},
        "requested_risk",
        "Extra inputs are not permitted",
    ),
    (
        "naive-timestamp",
        {**GOOD, "timestamp": datetime(2026, 1, 1)},
        "timestamp",
        "timezone info",
    ),
    ("naive-iso-timestamp", {**GOOD, "timestamp": "2026-01-01T00:00:00"}, "timestamp", "timezone"),
    ("empty-symbol", {**GOOD, "symbol": ""}, "symbol", "at least 1 character"),
    ("null-strategy", {**GOOD, "strategy": None}, "strategy", "valid string"),
]


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [pytest.param(f, n, m, id=i) for i, f, n, m in BAD_INTENTS],
)
def test_bad_intent_is_refused(fields: dict[str, Any], field: str, fragment: str) -> None:
    """A malformed intent never becomes a PortfolioIntent; the error names the field and why."""
    with pytest.raises(ValidationError) as info:
        PortfolioIntent(**fields)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    assert errors[0]["loc"][0] == field
    assert fragment in str(info.value)


def test_good_intent_is_accepted_and_on_grid() -> None:
    """The reference intent validates; risk is snapped to the 1e-6 grid and ISO times parse."""
    intent = PortfolioIntent(
        **{**GOOD, "requested_risk_abs": 0.1 + 0.2, "timestamp": "2026-01-01T00:00:00Z"}
    )
    assert intent.requested_risk_abs == 0.3
    assert intent.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert intent.side == "long"
    assert not intent.risk_reducing


def test_intent_is_frozen() -> None:
    """An intent cannot be changed after validation (so no caller can smuggle a NaN in later)."""
    intent = PortfolioIntent(**GOOD)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(intent, "requested_risk_abs", math.nan)  # noqa: B010 - as a caller would try


BAD_SNAPSHOTS: list[tuple[str, dict[str, Any], str]] = [
    ("nan-equity", {"equity": math.nan}, "finite"),
    ("inf-equity", {"equity": math.inf}, "finite"),
    ("negative-equity", {"equity": -1}, "greater than or equal to 0"),
    (
        "peak-below-equity",
        {"equity": 100, "peak_equity": 90},
        "peak_equity must be at least equity",
    ),
    ("negative-active-risk", {"equity": 100, "active_risk": -1}, "greater than or equal to 0"),
    (
        "override-not-a-name",
        {"equity": 100, "mode_override": "risk off!"},
        "should match pattern",
    ),
    ("extra-field", {"equity": 100, "heat": 5}, "Extra inputs are not permitted"),
    (
        "negative-bucket-trades",
        {"equity": 100, "strategies": {"S": {"active_trades": -1}}},
        "greater than or equal to 0",
    ),
    (
        "nan-bucket-risk",
        {"equity": 100, "symbols": {"BTC-USD": {"active_risk": math.nan}}},
        "finite",
    ),
]


@pytest.mark.parametrize(
    ("fields", "fragment"), [pytest.param(f, m, id=i) for i, f, m in BAD_SNAPSHOTS]
)
def test_bad_snapshot_is_refused(fields: dict[str, Any], fragment: str) -> None:
    """A malformed portfolio snapshot is refused by validation with a message saying why."""
    with pytest.raises(ValidationError) as info:
        PortfolioSnapshot(**fields)
    assert fragment in str(info.value)


def test_snapshot_derived_values() -> None:
    """peak_equity defaults to equity; drawdown and heat are derived, not stored."""
    snap = PortfolioSnapshot(equity=100, active_risk=3, reserved_risk=2)
    assert snap.peak_equity == 100
    assert snap.drawdown == 0.0
    assert snap.heat == 5
    assert PortfolioSnapshot(equity=90, peak_equity=100).drawdown == pytest.approx(0.1)
    assert BucketState(active_risk=1.5, reserved_risk=0.5).heat == 2.0


def test_the_absent_bucket_reads_as_a_fresh_bucket_state() -> None:
    """The generated chain and the interpreter read ZERO_BUCKET where a bucket is absent (a
    plain object, for speed): every name a BucketState has reads the same there, and its
    window counts cannot be written into by accident."""
    from policy_engine.engine.runtime import ZERO_BUCKET

    fresh = BucketState()
    names = [*BucketState.model_fields, "heat", "net_risk"]
    assert {n: getattr(ZERO_BUCKET, n) for n in names} == {n: getattr(fresh, n) for n in names}
    plain = [n for n in names if n not in ("windows", "window_exits", "heat", "net_risk")]
    assert all(type(getattr(ZERO_BUCKET, n)) is type(getattr(fresh, n)) for n in plain)
    with pytest.raises(TypeError):
        ZERO_BUCKET.windows["x"] = 1


def test_the_envelope_a_decision_carries_cannot_be_changed_by_its_reader() -> None:
    """Decisions made in one mode may share one envelope object (it is built once per mode
    when the policy's envelope reads no live state): a caller that changed it would change
    every other decision's, so it is frozen."""
    from pydantic import ValidationError

    from policy_engine.engine.contracts import PortfolioConstraintEnvelope

    env = PortfolioConstraintEnvelope(portfolio_mode="normal", max_new_risk_abs=10.0)
    with pytest.raises(ValidationError):
        env.max_new_risk_abs = 1e9
    assert env.max_new_risk_abs == 10.0
