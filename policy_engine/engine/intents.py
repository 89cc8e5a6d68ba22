"""The intent model of one policy: :class:`PortfolioIntent` with the policy's declared inputs.

A policy that declares ``inputs:`` reads extra intent fields (``intent.venue``,
``intent.expected_reward_abs``). They are validated as strictly as every other
input (a number is a JSON number, finite and bounded; a string at most 1000
characters; a bool a JSON boolean; a time an ISO 8601 timestamp with an
offset), absent ones take their declared default, and any field the policy does
not declare is refused as before. The model is a pydantic subclass of
``PortfolioIntent`` built once per policy, so everything that takes an intent
takes one of these, and its JSON Schema is the contract a caller must meet
(``policy schema --intent POLICY``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, create_model

from ..document.model import InputSpec
from ..lang.eventtime import MAX_TIME, MIN_TIME
from .contracts import (
    MAX_AMOUNT,
    RISK_SCALE,
    Flag,
    PortfolioIntent,
    Text,
    Timestamp,
    finite,
    strict_number,
)

# A declared number may be negative (an expected P&L), but is bounded like every amount.
InputNumber = Annotated[
    float,
    Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT),
    BeforeValidator(strict_number),
    AfterValidator(finite),
]
_TYPES: dict[str, Any] = {"number": InputNumber, "string": Text, "bool": Flag, "time": Timestamp}


def intent_model(name: str, inputs: dict[str, InputSpec]) -> type[PortfolioIntent]:
    """``PortfolioIntent`` itself when there are no inputs; else a subclass with one field
    per input (required, or optional with its default)."""
    if not inputs:
        return PortfolioIntent
    fields: dict[str, Any] = {}
    for key, spec in inputs.items():
        kind = _TYPES[spec.type]
        if spec.required:
            fields[key] = (kind, ...)
        else:
            fields[key] = (kind | None, spec.default)
    model: type[PortfolioIntent] = create_model(
        f"PortfolioIntent[{name}]",
        __base__=PortfolioIntent,
        __doc__=f"An intent for policy {name}: the PortfolioIntent fields and its inputs.",
        **fields,
    )
    # What is_valid_instance checks an instance's inputs against (the declared specs).
    type.__setattr__(model, "__policy_inputs__", dict(inputs))
    return model


# --- the fast check of an instance that arrives already built ---------------------------
#
# ``model_construct`` and ``model_copy(update=...)`` build an intent with no check at all (a
# 1e300 or NaN risk), so an instance is never trusted for its type. Re-validating it through
# pydantic costs about 8 us a decision; these checks read the fields directly and cost well
# under one. They are sound, not complete: True only for values pydantic's validation
# would keep exactly as they are (the documented bounds, the exact types it produces); a
# False sends the instance through the full validation, which refuses it with pydantic's
# message or (a value pydantic would only normalise) rebuilds it validated.


def _name(v: Any) -> bool:
    return v.__class__ is str and 0 < len(v) <= 200


def _text(v: Any) -> bool:
    return v is None or (v.__class__ is str and len(v) <= 1000)


def _time(v: Any) -> bool:
    return (
        v.__class__ is datetime
        # aware (a naive one is refused, and cannot compare); UTC's offset without a call
        and (v.tzinfo is UTC or v.utcoffset() is not None)
        and MIN_TIME <= v < MAX_TIME
    )


def _number(v: Any) -> bool:
    return v.__class__ is float and -MAX_AMOUNT <= v <= MAX_AMOUNT  # False for NaN


_INPUT_CHECKS: dict[str, Callable[[Any], bool]] = {
    "number": _number,
    "string": lambda v: v.__class__ is str and len(v) <= 1000,
    "bool": lambda v: v.__class__ is bool,
    "time": _time,
}
_SIDES = frozenset(("long", "short", "flat"))
_BASE_FIELDS = len(PortfolioIntent.model_fields)


def _base_valid(d: dict[str, Any]) -> bool:
    """The PortfolioIntent fields of an instance's ``__dict__`` within their bounds (the
    checks of ``_name``, ``_text`` and ``_time`` written out: this runs for every intent)."""
    try:
        iid, strategy, symbol = d["intent_id"], d["strategy"], d["symbol"]
        side, risk = d["side"], d["requested_risk_abs"]
        notional, bucket = d["requested_notional_abs"], d["correlation_bucket"]
        template, playbook, regime = d["template_id"], d["playbook_id"], d["regime_state"]
        ts = d["timestamp"]
        reduce_only = d["reduce_only"]
        quote, position = d["quote_currency"], d["position_id"]
    except KeyError:  # a required field left out by model_construct
        return False
    return (
        iid.__class__ is str
        and 0 < len(iid) <= 200
        and strategy.__class__ is str
        and 0 < len(strategy) <= 200
        and symbol.__class__ is str
        and 0 < len(symbol) <= 200
        and side.__class__ is str
        and side in _SIDES
        and risk.__class__ is float
        and 0.0 <= risk <= MAX_AMOUNT  # False for NaN
        and round(risk * RISK_SCALE) / RISK_SCALE == risk  # on the 1e-6 grid
        and (notional is None or (notional.__class__ is float and 0.0 <= notional <= MAX_AMOUNT))
        and (template is None or _text(template))
        and (playbook is None or _text(playbook))
        and (regime is None or _text(regime))
        and (bucket is None or _name(bucket))
        and (quote is None or _name(quote))
        and reduce_only.__class__ is bool
        and _time(ts)
        and (position is None or _name(position))
    )


def _input_valid(spec: InputSpec, v: Any) -> bool:
    if v is None:  # an optional input may be null (absent), a required one may not
        return not spec.required
    # The declared default is kept as the policy declared it (checked when it loaded).
    return v is spec.default or _INPUT_CHECKS[spec.type](v)


def is_valid_instance(model: type[PortfolioIntent], raw: PortfolioIntent) -> bool:
    """Whether an instance of ``model`` holds only what its validation would have kept
    (see above): the base fields, then the declared inputs, and no other field."""
    d = raw.__dict__
    # A class attribute PortfolioIntent declares (empty) and each policy's model overrides.
    inputs: dict[str, InputSpec] = model.__policy_inputs__
    if len(d) != _BASE_FIELDS + len(inputs) or raw.__pydantic_extra__:
        return False
    if not _base_valid(d):
        return False
    for key, spec in inputs.items():  # noqa: SIM110 (a loop, not all() over a generator: hot)
        if key not in d or not _input_valid(spec, d[key]):
            return False
    return True


def as_intent(model: type[PortfolioIntent], raw: Any) -> PortfolioIntent:
    """``raw`` (a dict, or an intent of any model) as a validated intent of ``model``; raises
    pydantic's ValidationError when it does not fit (a missing required input, an extra
    field the policy does not declare, an amount out of bounds).

    An instance of ``model`` itself is never trusted for its type: ``model_construct`` and
    ``model_copy(update=...)`` build one without any check (a 1e300 or NaN risk), and
    nothing a caller hands in may reach a decision or a journal unchecked. It is kept as
    it is when :func:`is_valid_instance` says so, and validated again otherwise."""
    if type(raw) is model:
        if is_valid_instance(model, raw):
            return raw
        raw = dict(vars(raw))  # every field as it is set, re-checked below
    elif isinstance(raw, PortfolioIntent):
        raw = raw.model_dump(exclude_unset=True)
    # The validator itself: model_validate is a Python wrapper around it (a replay's hot path).
    validated: PortfolioIntent = model.__pydantic_validator__.validate_python(raw)
    return validated


__all__ = ["as_intent", "intent_model", "is_valid_instance"]
