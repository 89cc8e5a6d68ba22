"""The checks of an event's fields: timestamps, amounts, names, and the validated models.

Every parser of the control plane's inputs (the core's :func:`~.events.parse_event`,
the controller's methods, the Temporal workflow's validators and its client) checks
a field here, so that an input one of them admits the others admit too. Pure: no
I/O, no clock (the admission clock's type is declared here, not read).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..decision_codes import CLOCK_SKEW as CLOCK_SKEW_CODE
from ..diagnostics import PolicyEngineError
from ..engine.contracts import (
    MAX_AMOUNT,
    Amount,
    Name,
    PortfolioIntent,
    Price,
    SignedAmount,
    Timestamp,
    to_units,
)
from ..engine.intents import as_intent, is_valid_instance
from ..lang.eventtime import MAX_TIME, MIN_TIME

Record = dict[str, Any]


class EventError(PolicyEngineError, ValueError):
    """An event that cannot be applied (unknown type, missing or malformed field)."""


class FillUpdate(BaseModel):
    """One execution reported by the execution ledger (incremental risk)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    intent_id: Name
    fill_id: Name
    filled_risk_abs: Amount
    timestamp: Timestamp
    # the execution price: with the intent's notional, the position's quantity (what a mark
    # values); optional, left out of the journal when absent (older journals stay as they are)
    price: Price | None = None
    # what the venue charged for it (negative: a rebate), on the 1e-6 grid; optional, so a
    # fill without one (every fill before it existed) reads and journals as it did
    fee: SignedAmount | None = None


def canonical(record: Mapping[str, Any]) -> str:
    """The byte-exact serialisation of a record (sorted keys, no spaces)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_default(value: Any) -> Any:
    """How a journal line serialises what JSON has no type for."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    # Whatever else a caller handed in (it failed validation anyway): journal its repr.
    return repr(value)


def parse_timestamp(value: Any, what: str = "timestamp") -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string with an offset, within
    [2000-01-01, 2200-01-01) UTC (a reservation deadline must stay a valid datetime)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise EventError(f"{what}: not an ISO 8601 timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        raise EventError(f"{what}: expected a timestamp, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventError(f"{what}: timestamp must carry a UTC offset")
    return check_time(value, what)


def check_time(value: datetime, what: str = "timestamp") -> datetime:
    if not MIN_TIME <= value < MAX_TIME:
        raise EventError(
            f"{what}: {value.isoformat()} is outside [{MIN_TIME:%Y-%m-%d}, {MAX_TIME:%Y-%m-%d}) UTC"
        )
    return value


def optional_timestamp(value: Any) -> datetime | None:
    """A timestamp, or None (an event that does not move the clock)."""
    return None if value is None else parse_timestamp(value)


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field: message; field: message``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "intent"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def field(event: Mapping[str, Any], key: str, types: tuple[type, ...] = (str,)) -> Any:
    """A required field of ``event`` of one of ``types`` (never a bool)."""
    value = event.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, types):
        raise EventError(f"{event.get('type')} event: `{key}` is missing or malformed")
    return value


def close_amounts(risk_abs: Any, realized_pnl: Any) -> tuple[int | None, int | None]:
    """A close's optional amounts as exact micro-units: ``risk_abs`` (a partial close: the
    active risk it takes off, above zero) and ``realized_pnl`` (signed). Both are JSON
    numbers on the 1e-6 grid, like every amount; EventError otherwise."""
    if risk_abs is None and realized_pnl is None:
        return None, None  # a plain close (the common case)
    units = None if risk_abs is None else _grid_units(risk_abs, "risk_abs", signed=False)
    if units == 0:
        raise EventError("risk_abs must be above zero (omit it to close the whole position)")
    pnl = None if realized_pnl is None else _grid_units(realized_pnl, "realized_pnl", signed=True)
    return units, pnl


def _grid_units(value: Any, what: str, *, signed: bool) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or abs(value) > MAX_AMOUNT or (value < 0 and not signed):
        bound = f"[-{MAX_AMOUNT:.0e}, {MAX_AMOUNT:.0e}]" if signed else f"[0, {MAX_AMOUNT:.0e}]"
        raise EventError(f"{what} must be a number in {bound}, got {value!r}")
    units = to_units(value)
    if units == 0 and value != 0:
        raise EventError(f"{what} {value!r} is below the 1e-6 grid (use 0 or at least 0.000001)")
    return units


# --- validation of inputs ------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], raw: Any) -> M:
    """``raw`` as ``model``: the model itself, or a dict validated (a ``type`` key ignored)."""
    if raw.__class__ is dict:
        # The common case (a journal line, a caller's dict), without the generic checks
        # and wrappers below: the same fields, the same validator, ~1 us less per event.
        fields = dict(raw)
        fields.pop("type", None)
        try:
            validated: M = model.__pydantic_validator__.validate_python(fields)
        except ValidationError as exc:
            raise ValueError(validation_message(exc)) from None
        return validated
    if isinstance(raw, model):
        # An instance may have been built without validation (model_construct, or
        # model_copy(update=...)): its fields are validated again, so no bound the docs
        # promise is trusted unchecked (a NaN fill would otherwise fail after it was
        # journaled, and the journal would no longer replay).
        try:
            checked: M = model.__pydantic_validator__.validate_python(dict(raw.__dict__))
        except ValidationError as exc:
            raise ValueError(validation_message(exc)) from None
        return checked
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a {model.__name__} or a dict, got {type(raw).__name__}")
    try:
        return model.model_validate({k: v for k, v in raw.items() if k != "type"})
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None


def parse_intent(raw: Any, model: type[PortfolioIntent] = PortfolioIntent) -> PortfolioIntent:
    """An intent of ``model`` (the policy's ``intent_model``: its declared inputs) from an
    intent or a dict, validated whatever type arrives (an instance of ``model`` too: see
    :func:`~..engine.intents.as_intent`); ValueError (the validation message) if invalid."""
    if raw.__class__ is model and is_valid_instance(model, raw):
        return raw  # the common case, before the generic checks below (an ABC check costs)
    if raw.__class__ is dict or isinstance(raw, Mapping):  # (a journal line: a dict)
        raw = {k: v for k, v in raw.items() if k != "type"}
    elif not isinstance(raw, PortfolioIntent):
        raise ValueError(f"expected a PortfolioIntent or a dict, got {type(raw).__name__}")
    try:
        return as_intent(model, raw)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None


def parse_fill(raw: Any) -> FillUpdate:
    """A fill from a model or a dict; ValueError (the validation message) if invalid."""
    return _parse(FillUpdate, raw)


def _bounded_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and 0 <= value <= MAX_AMOUNT  # also false for NaN
    )


def check_equity(equity: Any, peak_equity: Any) -> None:
    """Equity and peak: numbers (not strings, Decimals or booleans) in [0, 1e15]."""
    if not _bounded_number(equity):
        raise EventError(f"equity must be a number in [0, {MAX_AMOUNT:.0e}], got {equity!r}")
    if peak_equity is not None and not _bounded_number(peak_equity):
        raise EventError(
            f"peak_equity must be a number in [0, {MAX_AMOUNT:.0e}], got {peak_equity!r}"
        )


_MODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


def check_mode(mode: Any) -> None:
    """A mode event names a mode (an identifier; whether the policy declares it is the
    core's check) or None to clear the override."""
    if mode is not None and not (isinstance(mode, str) and _MODE_NAME.fullmatch(mode)):
        raise EventError(f"mode must be a mode's name or null, got {mode!r}")


def check_intent_id(intent_id: Any) -> str:
    """An intent id as the intent model takes it: a string of 1 to 200 characters."""
    if not isinstance(intent_id, str) or not 1 <= len(intent_id) <= 200:
        raise EventError(f"intent_id must be a string of 1 to 200 characters, got {intent_id!r}")
    return intent_id


def check_mark(symbol: Any, price: Any) -> tuple[str, float]:
    """A mark's symbol (a name, as an intent's) and price (a number above 0, finite, at most
    1e15; an int is taken as the float it is)."""
    if not isinstance(symbol, str) or not 1 <= len(symbol) <= 200:
        raise EventError(f"symbol must be a string of 1 to 200 characters, got {symbol!r}")
    if (
        isinstance(price, bool)
        or not isinstance(price, int | float)
        or not 0 < price <= MAX_AMOUNT  # also false for NaN
        or not math.isfinite(price)
    ):
        raise EventError(f"price must be a number in (0, {MAX_AMOUNT:.0e}], got {price!r}")
    return symbol, float(price)


def check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or len(reason) > 1000:
        raise EventError(f"reason must be a string of at most 1000 characters, got {reason!r}")
    return reason


_EXIT_REASON = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")


def check_exit_reason(reason: Any) -> str | None:
    """A close's exit reason (`stoploss`): None, or a word of at most 64 characters (letters,
    digits, `_ . : -`), since windows and locks compare it exactly."""
    if reason is None:
        return None
    if not isinstance(reason, str) or _EXIT_REASON.fullmatch(reason) is None:
        raise EventError(
            f"an exit reason is a word of at most 64 letters, digits or `_.:-`, got {reason!r}"
        )
    return reason


# Admission (the live shells): how far ahead of the shell's clock an event may be stamped.
DEFAULT_MAX_SKEW = timedelta(minutes=5)
Clock = Callable[[], datetime]


__all__ = [
    "CLOCK_SKEW_CODE",
    "DEFAULT_MAX_SKEW",
    "Clock",
    "EventError",
    "FillUpdate",
    "Record",
    "canonical",
    "check_equity",
    "check_exit_reason",
    "check_intent_id",
    "check_mode",
    "check_reason",
    "check_time",
    "close_amounts",
    "field",
    "json_default",
    "optional_timestamp",
    "parse_fill",
    "parse_intent",
    "parse_timestamp",
    "validation_message",
]
