"""The public data contracts (pydantic v2): intents, snapshots, decisions, envelopes.

What callers hand in is validated strictly (a bad intent is refused, never
approved); what the engine builds itself is trusted and built fast.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from ..lang.eventtime import MAX_TIME, MIN_TIME

Side = Literal["long", "short", "flat"]

# Risk amounts live on a grid of 1e-6 (micro-units of the account currency) so that
# the controller can keep them as exact integers; see controller.py.
RISK_SCALE = 1_000_000


def to_units(amount: float) -> int:
    """Risk amount -> exact integer micro-units (round half even)."""
    return round(amount * RISK_SCALE)


def from_units(units: int) -> float:
    return units / RISK_SCALE


# Bounds on what callers may hand in (documented in docs/policy-format.md, "Inputs").
# Amounts and equity up to 1e15 units of the account currency: far beyond any book, and
# small enough that every aggregate stays exact on the 1e-6 grid. Timestamps within
# [2000-01-01, 2200-01-01) UTC: a TTL added to any of them stays a valid datetime.
MAX_AMOUNT = 1e15


def strict_number(value: Any) -> Any:
    # Strict: an int or a float, nothing that merely converts to one. A boolean would read
    # as 1.0, a string or a Decimal would be journaled as something replay reads otherwise.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {_kind(value)}")
    if isinstance(value, int) and abs(value) > MAX_AMOUNT:
        raise ValueError(f"must be at most {MAX_AMOUNT:.0e} in absolute value")
    return value


_KINDS = {
    bool: "a boolean",
    str: "a string",
    bytes: "bytes",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a mapping",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _on_grid(value: float) -> float:
    units = to_units(finite(value))
    if units == 0 and value > 0:
        # Rounding 1e-7 to zero would approve a zero-risk trade that still takes a slot.
        raise ValueError("is below the 1e-6 risk grid (use 0 or at least 0.000001)")
    return from_units(units)


def _timestamp(value: Any) -> Any:
    # A datetime, or an ISO 8601 string with an offset; never a number (0 would be 1970).
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    raise ValueError(f"must be an ISO 8601 timestamp with an offset, not {_kind(value)}")


def _in_range(value: datetime) -> datetime:
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError(f"must lie in [{MIN_TIME:%Y-%m-%d}, {MAX_TIME:%Y-%m-%d}) UTC")
    return value


# The bounds come first so that the published JSON Schema says `minimum`/`maximum`.
Amount = Annotated[
    float,
    Field(ge=0, le=MAX_AMOUNT),
    BeforeValidator(strict_number),
    AfterValidator(_on_grid),
]


def _on_grid_signed(value: float) -> float:
    units = to_units(finite(value))
    if units == 0 and value != 0:
        raise ValueError("is below the 1e-6 grid (use 0 or at least 0.000001 in size)")
    return from_units(units)


# A signed amount on the grid (a realized P&L).
SignedAmount = Annotated[
    float,
    Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT),
    BeforeValidator(strict_number),
    AfterValidator(_on_grid_signed),
]
FiniteNonNeg = Annotated[
    float, Field(ge=0, le=MAX_AMOUNT), BeforeValidator(strict_number), AfterValidator(finite)
]
# A price (a fill's, a mark's): positive and finite, bounded like every amount.
Price = Annotated[
    float, Field(gt=0, le=MAX_AMOUNT), BeforeValidator(strict_number), AfterValidator(finite)
]
Count = Annotated[int, Strict(), Field(ge=0, le=1_000_000_000)]
# A window's count, or a timed lock's end (`lock:<name>`, microseconds since the epoch);
# an aggregate window's value is an amount (a sum of realized P&L may be negative).
WindowValue = Annotated[int, Strict(), Field(ge=0, le=2**53)] | SignedAmount
Name = Annotated[str, Strict(), Field(min_length=1, max_length=200)]
Text = Annotated[str, Strict(), Field(max_length=1000)]
Flag = Annotated[bool, Strict()]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp), AfterValidator(_in_range)]
# A mode is any name the policy declares under `modes` (an identifier); whether it is
# declared is the policy's business (an override naming an undeclared mode is refused).
ModeName = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PortfolioIntent(_Strict):
    """One symbol workflow asking for risk. Amounts are absolute (>= 0), on a 1e-6 grid."""

    intent_id: Name
    strategy: Name
    symbol: Name
    side: Side
    requested_risk_abs: Amount
    requested_notional_abs: FiniteNonNeg | None = None
    template_id: Text | None = None
    playbook_id: Text | None = None
    regime_state: Text | None = None
    correlation_bucket: Name | None = None
    reduce_only: Flag = False
    # the currency its notional is in: what its reservation locks (`balance.quote.*`)
    quote_currency: Name | None = None
    timestamp: Timestamp
    # the open position it reduces: the intent id of the trade that opened it (issue 23)
    position_id: Name | None = None

    @property
    def notional(self) -> float | None:
        """The intent's notional (``requested_notional_abs``; null when it carries none)."""
        return self.requested_notional_abs

    # The declared inputs of a policy's intent model (engine.intents sets them on each model
    # it builds): a plain class attribute, read on every intent as cheaply as any other.
    __policy_inputs__: ClassVar[dict[str, Any]] = {}

    @property
    def risk_reducing(self) -> bool:
        """Flattening or reduce-only: allowed even when new risk is not."""
        return self.side == "flat" or self.reduce_only

    # The order group this intent is decided in (`group.count`, `group.risk`,
    # `group.notional`): set by the control plane on a copy of a group's member, never by a
    # caller (it is no field: no input carries it). A lone intent is a group of one.
    def in_group(self, count: int, risk: float, notional: float | None) -> PortfolioIntent:
        """A copy of this intent decided as a member of a group of ``count`` intents of
        ``risk`` and ``notional`` in all."""
        member = self.model_copy()
        object.__setattr__(member, "_group", (count, risk, notional))
        return member

    @property
    def group_count(self) -> int:
        group = self.__dict__.get("_group")
        return 1 if group is None else int(group[0])

    @property
    def group_risk(self) -> float:
        group = self.__dict__.get("_group")
        return float(self.requested_risk_abs) if group is None else float(group[1])

    @property
    def group_notional(self) -> float | None:
        group = self.__dict__.get("_group")
        return self.requested_notional_abs if group is None else group[2]


class _Notional(_Strict):
    """The notional and unrealized P&L a bucket (or the portfolio) states (control/state.py)."""

    active_notional: Amount = 0.0
    reserved_notional: Amount = 0.0
    long_notional: Amount = 0.0
    short_notional: Amount = 0.0
    unrealized_pnl: SignedAmount = 0.0
    unrealized_drawdown: FiniteNonNeg = 0.0

    @property
    def gross_notional(self) -> float:
        return self.active_notional + self.reserved_notional

    @property
    def net_notional(self) -> float:
        return self.long_notional - self.short_notional


class PositionState(_Strict):
    """One open position as a hand-made snapshot states it (``positions`` by id): what
    `position.*` reads (the control plane reads its own trades)."""

    side: Literal["long", "short"]
    size: Amount  # its filled risk
    notional: Amount = 0.0
    entry_time: Timestamp
    unrealized_pnl: SignedAmount = 0.0


class BucketState(_Notional):
    """Live counters of one strategy, symbol or cohort. ``long_risk`` and ``short_risk``
    split the heat by side (what the control plane keeps; a hand-made snapshot states it)."""

    active_risk: Amount = 0.0
    reserved_risk: Amount = 0.0
    open_positions: Count = 0
    active_trades: Count = 0
    long_risk: Amount = 0.0
    short_risk: Amount = 0.0
    day_realized_pnl: SignedAmount = 0.0
    loss_streak: Count = 0
    windows: dict[str, WindowValue] = Field(default_factory=dict)  # counts, lock ends, by name
    # when the oldest event of each rolling window leaves it (a snapshot holds no events:
    # it states this so that a deferral reports `retry_after` as the control plane does)
    window_exits: dict[str, Timestamp] = Field(default_factory=dict)

    @property
    def heat(self) -> float:
        return self.active_risk + self.reserved_risk

    @property
    def net_risk(self) -> float:
        return self.long_risk - self.short_risk


class PortfolioSnapshot(_Notional):
    """The portfolio aggregates a decision depends on (what `Policy.evaluate` reads)."""

    equity: FiniteNonNeg
    peak_equity: FiniteNonNeg | None = None
    active_risk: Amount = 0.0
    reserved_risk: Amount = 0.0
    open_positions: Count = 0
    active_trades: Count = 0
    long_risk: Amount = 0.0
    short_risk: Amount = 0.0
    day_start_equity: FiniteNonNeg | None = None  # the trading day's first; default: equity
    day_realized_pnl: SignedAmount = 0.0
    loss_streak: Count = 0
    windows: dict[str, WindowValue] = Field(default_factory=dict)  # the portfolio's counts, locks
    window_exits: dict[str, Timestamp] = Field(default_factory=dict)  # as BucketState's
    latches: dict[str, Flag] = Field(default_factory=dict)  # latch name -> set
    strategies: dict[str, BucketState] = Field(default_factory=dict)
    symbols: dict[str, BucketState] = Field(default_factory=dict)
    cohorts: dict[str, BucketState] = Field(default_factory=dict)
    scopes: dict[str, dict[str, BucketState]] = Field(default_factory=dict)  # scope -> key value
    positions: dict[str, PositionState] = Field(default_factory=dict)  # open ones, by id
    mode_override: ModeName | None = None
    mode_override_reason: Text | None = None
    # per currency: free and locked, as the control plane reads them (`balance.USD.free`)
    balances: dict[Name, dict[Literal["free", "locked"], FiniteNonNeg]] = Field(
        default_factory=dict
    )

    def balance(self, currency: str | None, field: str) -> float | None:
        """``balance.<currency>.<field>``; None when the currency has no balance."""
        values = None if currency is None else self.balances.get(currency)
        return None if values is None else values.get(field, 0.0)  # type: ignore[call-overload]

    @model_validator(mode="after")
    def _peak(self) -> PortfolioSnapshot:
        if self.peak_equity is None:
            object.__setattr__(self, "peak_equity", self.equity)
        elif self.peak_equity < self.equity:
            raise ValueError("peak_equity must be at least equity")
        if self.day_start_equity is None:
            object.__setattr__(self, "day_start_equity", self.equity)
        return self

    @property
    def day_pnl(self) -> float:
        return self.equity - (self.day_start_equity or 0.0)

    @property
    def heat(self) -> float:
        return self.active_risk + self.reserved_risk

    @property
    def net_risk(self) -> float:
        return self.long_risk - self.short_risk

    @property
    def drawdown(self) -> float:
        peak = self.peak_equity or 0.0
        return (peak - self.equity) / peak if peak > 0 else 0.0


class Clip(BaseModel):
    rule_id: str
    from_risk: float
    to_risk: float


class RuleWarning(BaseModel):
    """A rule in `enforcement: warn` (shadow) mode that would have blocked or clipped."""

    rule_id: str
    code: str
    message: str
    context: dict[str, Any] = Field(default_factory=dict)


class PolicyRef(BaseModel):
    name: str
    version: int
    hash: str


class PortfolioConstraintEnvelope(BaseModel):
    """What every instrument workflow must honour until the next broadcast. Frozen: one
    envelope is shared by every decision (and broadcast) made while it holds."""

    model_config = ConfigDict(frozen=True)

    portfolio_mode: ModeName
    max_new_risk_abs: float | None = None
    max_additional_positions: int | None = None
    symbol_max_risk_abs: float | None = None
    size_multiplier_cap: float | None = None
    force_flatten_only: bool = False
    policy_version: int | None = None


class AllocationDecision(BaseModel):
    """The answer to one intent: approved in full, clipped, or rejected, and why."""

    intent_id: str
    approved: bool
    requested_risk_abs: float
    approved_risk_abs: float
    decision_code: str  # approved_full / approved_clipped / the deciding rule's code
    rule_id: str | None = None
    category: str | None = None
    reasons: list[str] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    headroom: float | None = None
    clips: list[Clip] = Field(default_factory=list)
    warnings: list[RuleWarning] = Field(default_factory=list)
    mode: ModeName = "normal"
    mode_source: Literal["drawdown", "override"] = "drawdown"
    mode_reason: str = ""
    constraint_envelope: PortfolioConstraintEnvelope
    reservation_ttl_sec: int | None = None
    policy: PolicyRef


def fast_model(cls: type[BaseModel], values: dict[str, Any]) -> Any:
    """Build a model from trusted, complete, already-typed engine data without validation.

    Only for data the engine produced itself; anything from callers goes through
    normal validation.
    """
    obj = _new_object(cls)
    _set_dict(obj, values)
    _set_fields_set(obj, set(values))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# BaseModel's own slot descriptors, called directly: object.__setattr__ looks each name up
# through the class first, a third of what building a decision or an envelope cost.
_new_object = object.__new__
_set_dict = vars(BaseModel)["__dict__"].__set__
_set_fields_set = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private = vars(BaseModel)["__pydantic_private__"].__set__


__all__ = [
    "RISK_SCALE",
    "AllocationDecision",
    "BucketState",
    "Clip",
    "ModeName",
    "PolicyRef",
    "PortfolioConstraintEnvelope",
    "PortfolioIntent",
    "PortfolioSnapshot",
    "PositionState",
    "RuleWarning",
    "datetime",
    "finite",
    "from_units",
    "strict_number",
    "to_units",
]
