"""The policy document after schema validation, before expressions are checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ..lang.valuetypes import Const

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ExprSource:
    """Expression text and where its YAML scalar lives."""

    text: str
    path: YamlPath


@dataclass(frozen=True, slots=True)
class RuleSpec:
    index: int
    id: str
    category: str
    kind: Literal["require", "limit", "allow"]
    expr: ExprSource
    when: ExprSource | None
    on_exceed: Literal["clip", "reject"]
    enforcement: Literal["enforce", "warn"]
    code: str
    message: ExprSource | None
    description: str | None = None
    enforce_from: datetime | None = None  # staged rollout: shadow before, enforced from
    # A value the rule reads is missing (null, absent input, no scope key): `reject` fails
    # closed (the default); `approve` lets the intent pass this rule, as Nautilus skips a
    # notional check when there is no price.
    when_missing: Literal["approve", "reject"] = "reject"
    # `defer`: a rejection on a window or a lock answers "retry after N s" (`deferred`)
    on_reject: Literal["reject", "defer"] = "reject"
    # What the rule decides (`applies_to:`): intents (the default, so a rule written before
    # requests existed decides exactly as before), cancel requests, modify requests.
    applies_to: tuple[str, ...] = ("intent",)
    # In the chain of one request kind (`index`: its place there), the rule's place in the
    # document (None: the same as `index`).
    written_at: int | None = None

    @property
    def path(self) -> YamlPath:
        return ("rules", self.index if self.written_at is None else self.written_at)

    def shadow_at(self, when: datetime) -> bool:
        """Whether the rule runs in shadow (warns, blocks nothing) for an intent at ``when``."""
        if self.enforcement == "warn":
            return True
        return self.enforce_from is not None and when < self.enforce_from


@dataclass(frozen=True, slots=True)
class ModeSpec:
    name: str
    risk_multiplier: float
    flatten_only: bool
    when: ExprSource | None
    attrs: dict[str, Const] = field(default_factory=dict)
    index: int = 0  # position in `modes` as written: 0 is `normal`, the mildest

    @property
    def severity(self) -> int:
        return self.index


@dataclass(frozen=True, slots=True)
class InputSpec:
    """An extra intent field the policy reads as ``intent.<name>``."""

    name: str
    type: Literal["number", "string", "bool", "time"]
    default: Const | datetime | None  # the value when absent (None: absent, `has()` false)
    required: bool = False


KEY_SEPARATOR = "|"  # between the parts of a composite key's value: `SCALPER|long`


@dataclass(frozen=True, slots=True)
class ScopeSpec:
    """A bucket of the policy's own keyed by an intent field: namespace ``name``."""

    name: str
    # The intent fields whose values select the bucket (`venue` in `intent.venue`); two or
    # more make a composite key, its value the values joined with KEY_SEPARATOR.
    key_fields: tuple[str, ...]
    values: dict[str, dict[str, Const]] = field(default_factory=dict)


WindowCount = Literal[
    "approvals",
    "requests",
    "rejections",
    "fills",
    "closes",
    "losing_closes",
    "cancels",
    "cancel_requests",
    "modify_requests",
]
# What a rule may decide (`applies_to`): an intent, a cancel request, a modify request.
REQUEST_KINDS = ("intent", "cancel", "modify")
# The rule kinds (`applies_to`) each chain one evaluation runs is made of: a modify that
# grows its order runs the intent rules and the modify rules.
REQUEST_CHAINS: dict[str, frozenset[str]] = {
    "intent": frozenset({"intent"}),
    "cancel": frozenset({"cancel"}),
    "modify": frozenset({"modify"}),
    "grow": frozenset({"intent", "modify"}),
}
WindowAggregate = Literal["sum", "min", "max", "drawdown"]
# The quantities each kind of event carries, which an aggregate window may read: an
# intent's risk and notional (requested; an approval's as approved), a fill's risk, fee and
# the notional it moved to filled (its trade's pro-rata share), a close's realized P&L and
# the risk and filled notional it took off. A notional only when the trade has one (an
# intent without `requested_notional_abs` gives none: no window aggregates that event).
WINDOW_QUANTITIES: dict[str, tuple[str, ...]] = {
    "requests": ("risk", "notional"),
    "approvals": ("risk", "notional"),
    "rejections": ("risk", "notional"),
    "fills": ("risk", "fee", "notional"),
    "closes": ("realized_pnl", "risk", "notional"),
    "losing_closes": ("realized_pnl", "risk", "notional"),
    # decided requests and cancels are counted, not aggregated
    "cancels": (),
    "cancel_requests": (),
    "modify_requests": (),
}
# The quantities that may fall: the only ones a drawdown means something over (the
# running total of a quantity that is never negative never falls).
SIGNED_QUANTITIES = ("realized_pnl",)
# The quantities that are never below 0 (a fee may be: a rebate)
NONNEGATIVE_QUANTITIES = ("risk", "notional")


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A rolling count of events on event time, read as ``<per>.<name>``."""

    name: str
    count: WindowCount
    per: str  # portfolio, strategy, symbol, cohort or a scope's name
    over: int  # seconds: the window is (t - over, t]; 0 for a daily window
    # `over: trading_day`: the window is the trading day so far; it empties at the rollover
    daily: bool = False
    # `reason: stoploss` (or a list): only closes with one of these exit reasons count
    reasons: tuple[str, ...] = ()
    # `boundary: closed`: the window is [t - over, t], an event exactly `over` ago still in
    # it (vn.py's flow limit); `open` (the default) is (t - over, t]
    closed: bool = False
    # `sum: realized_pnl` (or min, max, drawdown): the window reads that aggregate of the
    # counted events' quantity instead of their number (None: a count)
    aggregate: WindowAggregate | None = None
    quantity: str | None = None  # the quantity it aggregates (WINDOW_QUANTITIES)


@dataclass(frozen=True, slots=True)
class LockSpec:
    """A timed lock, read as ``lock.<name>``: set for a key when window ``window``'s count
    for it reaches ``at_least``, until ``seconds`` later, or ``until`` (`rollover` or a
    local `HH:MM`); the end rounded up to the next ``round_to`` boundary (seconds)."""

    name: str
    window: str
    at_least: int
    seconds: int | None
    until: str | None
    round_to: int | None = None


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """What `policy verify` proves: ``check`` holds for every state and intent (its YAML
    key is ``assert``). The engine never evaluates it."""

    id: str
    check: ExprSource


@dataclass(frozen=True, slots=True)
class LatchSpec:
    """A condition that stays true once met, read as ``latch.<name>``."""

    name: str
    when: ExprSource
    until: Literal["rollover", "reset"]


@dataclass(frozen=True, slots=True)
class TradingDaySpec:
    """Where and when the trading day rolls over: a local time of day in a zone."""

    timezone: str = "UTC"
    rollover: str = "00:00"


@dataclass(frozen=True, slots=True)
class CohortSpec:
    name: str
    symbols: tuple[str, ...]
    attrs: dict[str, Const] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PolicySpec:
    path: str
    content_hash: str
    api_version: str
    name: str
    version: int
    description: str
    params: dict[str, Const]
    strategies: dict[str, dict[str, Const]]
    symbols: dict[str, dict[str, Const]]
    cohorts: dict[str, CohortSpec]
    modes: dict[str, ModeSpec]
    rules: tuple[RuleSpec, ...]
    envelope: dict[str, ExprSource]
    reservation_ttl_sec: int | None
    min_risk_abs: float
    timezone: str = "UTC"  # IANA name: where weekday/time_of_day/in_window read event time
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    trading_day: TradingDaySpec = field(default_factory=TradingDaySpec)
    scopes: dict[str, ScopeSpec] = field(default_factory=dict)
    windows: dict[str, WindowSpec] = field(default_factory=dict)
    latches: dict[str, LatchSpec] = field(default_factory=dict)
    locks: dict[str, LockSpec] = field(default_factory=dict)
    properties: tuple[PropertySpec, ...] = ()  # for `policy verify` only
    currencies: tuple[str, ...] = ()  # the balances it reads: `balance.<CCY>.free`, ...
