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

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, create_model

from ..document.model import InputSpec
from .contracts import (
    MAX_AMOUNT,
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
    return model


def as_intent(model: type[PortfolioIntent], raw: Any) -> PortfolioIntent:
    """``raw`` (a dict, or an intent of any model) as a validated intent of ``model``; raises
    pydantic's ValidationError when it does not fit (a missing required input, an extra
    field the policy does not declare, an amount out of bounds).

    An instance of ``model`` itself is validated again, never trusted: ``model_construct``
    and ``model_copy(update=...)`` build one without any check (a 1e300 or NaN risk), and
    nothing a caller hands in may reach a decision or a journal unchecked."""
    if type(raw) is model:
        raw = dict(vars(raw))  # every field as it is set, re-checked below
    elif isinstance(raw, PortfolioIntent):
        raw = raw.model_dump(exclude_unset=True)
    return model.model_validate(raw)


__all__ = ["as_intent", "intent_model"]
