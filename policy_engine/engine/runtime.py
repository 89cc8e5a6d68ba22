"""What the compiled chain and the interpreter read at evaluation time.

Built once per policy from the checked model: constants, per-strategy,
per-symbol and per-cohort configuration, and one ``ModeState`` per mode.
Also the error type of evaluation and the clip quantiser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from ..document.checker import CheckedPolicy
from ..document.model import KEY_SEPARATOR
from ..lang.errors import EvalError, EvalErrorKind
from ..lang.eventtime import zone
from .contracts import RISK_SCALE


class _ZeroBucket:
    """The bucket of a name nobody counts in yet: what a fresh :class:`BucketState` reads
    (every amount and count zero, no window count), as plain class attributes. The
    generated chain reads one whenever a strategy, symbol, cohort or scope bucket is absent
    (say, after its last trade ended): a pydantic model's attributes go through its
    ``__getattr__`` hook and ``heat`` through a property, several times the cost."""

    __slots__ = ()
    active_risk = reserved_risk = long_risk = short_risk = heat = net_risk = 0.0
    active_notional = reserved_notional = long_notional = short_notional = 0.0
    gross_notional = net_notional = unrealized_pnl = unrealized_drawdown = 0.0
    day_realized_pnl = 0.0
    open_positions = active_trades = loss_streak = 0
    windows: Mapping[str, Any] = MappingProxyType({})
    window_exits: Mapping[str, Any] = MappingProxyType({})


# (it reads as a fresh BucketState: tests/test_contracts.py compares them name by name)
ZERO_BUCKET: Any = _ZeroBucket()

# Where the mode in force comes from (`mode.source` in expressions, `mode_source` in a
# decision): the policy's tiers (named after the drawdown they usually read) or an override.
MODE_FROM_TIERS = "drawdown"
MODE_FROM_OVERRIDE = "override"

__all__ = [
    "MODE_FROM_OVERRIDE",
    "MODE_FROM_TIERS",
    "ZERO_BUCKET",
    "EvalError",
    "ModeState",
    "RuntimeData",
    "mode_source_reason",
    "position_of",
    "position_value",
    "quantize_down",
    "within",
]


@dataclass(frozen=True)
class ModeState:
    index: int
    name: str
    values: dict[str, Any]  # name, risk_multiplier, flatten_only, custom keys (no `source`)
    reason: str


def mode_source_reason(mode: ModeState, overridden: bool, snapshot: Any) -> tuple[str, str]:
    """Where ``mode`` comes from and why: the one place a decision's and the envelope's
    ``mode_source``/``mode_reason`` are worked out (an override says its own reason)."""
    if overridden:
        return MODE_FROM_OVERRIDE, getattr(snapshot, "mode_override_reason", None) or "override"
    return MODE_FROM_TIERS, mode.reason


@dataclass(frozen=True)
class RuntimeData:
    params: dict[str, Any]
    strategies: dict[str, dict[str, Any]]
    symbols: dict[str, dict[str, Any]]
    cohort_of: dict[str, str]
    cohorts: dict[str, dict[str, Any]]
    cohort_symbols: dict[str, list[str]]
    modes: tuple[ModeState, ...]  # the declared modes, indexed by severity (mildest 0)
    severity: dict[str, int]  # mode name -> index
    min_risk_abs: float
    # What functions `need` besides their arguments (lang/functions.py), by name: the
    # generated code and the interpreter both pass these, from here.
    context: dict[str, Any]
    # Declared scopes: name -> the intent fields it is keyed by, and its constants by value.
    scope_fields: dict[str, tuple[str, ...]]
    scopes: dict[str, dict[str, dict[str, Any]]]

    @classmethod
    def of(cls, checked: CheckedPolicy) -> RuntimeData:
        spec = checked.spec
        cohort_of: dict[str, str] = {}
        for cohort in spec.cohorts.values():
            for sym in cohort.symbols:
                cohort_of.setdefault(sym, cohort.name)  # first declared cohort wins
        modes: list[ModeState] = []
        for i, m in enumerate(spec.modes.values()):  # mildest first, as written
            reason = m.when.text if m.when else "default"
            values = {
                **m.attrs,
                "name": m.name,
                "risk_multiplier": m.risk_multiplier,
                "flatten_only": m.flatten_only,
            }
            modes.append(ModeState(i, m.name, values, reason))
        return cls(
            params=dict(spec.params),
            strategies={k: dict(v) for k, v in spec.strategies.items()},
            symbols={k: dict(v) for k, v in spec.symbols.items()},
            cohort_of=cohort_of,
            cohorts={k: dict(c.attrs) for k, c in spec.cohorts.items()},
            cohort_symbols={k: list(c.symbols) for k, c in spec.cohorts.items()},
            modes=tuple(modes),
            severity={m.name: m.index for m in modes},
            min_risk_abs=spec.min_risk_abs,
            context={"timezone": zone(spec.timezone)},
            scope_fields={k: sc.key_fields for k, sc in spec.scopes.items()},
            scopes={k: {v: dict(c) for v, c in sc.values.items()} for k, sc in spec.scopes.items()},
        )

    def cohort_name(self, symbol: str, bucket: str | None) -> str:
        """The policy's cohort of ``symbol``; else the intent's bucket; else the symbol alone."""
        return self.cohort_of.get(symbol) or bucket or symbol


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
LOCK_PREFIX = "lock:"  # a lock's end lives in its bucket's `windows` as `lock:<name>`


def epoch_us(ts: datetime) -> int:
    """An instant as whole microseconds since the epoch (a lock's end, in a bucket)."""
    return (ts - _EPOCH) // _MICRO


def locked(end_us: int, now: datetime) -> bool:
    """Whether a lock ending at ``end_us`` (0: none) holds at ``now``."""
    return end_us > epoch_us(now)


def position_of(snap: Any, intent: Any) -> Any:
    """The open position ``intent`` names (``position_id``) in the state: the control plane's
    trade, or a hand-made snapshot's :class:`~.contracts.PositionState`. EvalError (a missing
    value: ``when_missing`` applies) when the intent names none or the state holds no such
    open position."""
    pid = getattr(intent, "position_id", None)
    if pid is None:
        raise EvalError(EvalErrorKind.NULL_VALUE, "`intent.position_id` is null: no position")
    found = getattr(snap, "positions", {}).get(pid)
    # the control plane's table holds reservations too: a position is a trade with a fill
    if found is None or not (getattr(found, "is_open", False) or getattr(found, "size", 0) > 0):
        raise EvalError(EvalErrorKind.NULL_VALUE, f"no open position {pid!r}")
    return found


def position_value(snap: Any, intent: Any, key: str) -> Any:
    """``position.<key>`` for ``intent`` (``id`` is the id the intent names; ``age`` the
    seconds from the position's entry to the intent's timestamp)."""
    found = position_of(snap, intent)
    if key == "id":
        return intent.position_id
    if key == "age":
        return (intent.timestamp - found.entry_time).total_seconds()
    return getattr(found, key)


def scope_key(fields: tuple[str, ...], read: Callable[[str], Any]) -> str | None:
    """The value of a scope's key, its ``fields`` read with ``read``: one field's value, or a
    composite key's values joined with ``|`` (None when any part is null: no bucket)."""
    if len(fields) == 1:
        return read(fields[0])  # type: ignore[no-any-return]
    parts = [read(f) for f in fields]
    if any(p is None for p in parts):
        return None
    return KEY_SEPARATOR.join(parts)


def quantize_down(value: float) -> float:
    """The largest grid amount not above ``value``, forgiving float noise at grid points.

    0.3 - 0.1 is 0.19999999999999998 in floats; a risk owner means 0.2.
    """
    scaled = value * RISK_SCALE
    if not math.isfinite(scaled):  # -inf is a closed cap, +inf none; neither has a grid point
        return value
    nearest = round(scaled)
    if abs(scaled - nearest) <= 1e-6 + abs(scaled) * 1e-12:
        return nearest / RISK_SCALE
    return math.floor(scaled) / RISK_SCALE


def within(amount: float, limit: float) -> bool:
    """``amount <= limit`` on the 1e-6 grid: float noise in the limit does not clip."""
    return amount <= limit or amount <= quantize_down(limit)
