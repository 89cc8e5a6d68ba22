"""Solver models of issue 23's names (a part of :mod:`.translate`): the group an intent is
decided in (``group.*``), balances per currency (``balance.*``) and the open position an
intent names (``position.*``), each within the linter's domains (analysis/linter.py) and
replayed into a snapshot and an intent by :mod:`.replay`.

- ``group.count`` is a count of at least 1; ``group.risk`` and ``group.notional`` are at
  least the intent's own, and exactly it when the group is of one (a group's notional is
  null when any member's is).
- ``balance.<CCY>.free`` may be below 0 (reported free less this portfolio's locks),
  ``.locked`` is not; both are null for a currency never reported. ``balance.quote.*`` is
  the intent's ``quote_currency``'s (null when it names none, or a currency the policy does
  not declare: the control plane refuses its balance events).
- ``position.*`` fails the evaluation (a missing value) unless the intent names a position
  (``position_id``) that is open; its size is above 0, its side long or short; ``age`` is
  on the 1e-6 grid (its entry is the intent's time less it). ``entry_time`` has no model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import z3

from ..document.names import QUOTE
from .terms import all_of, any_of
from .world import Unknown, Val

if TYPE_CHECKING:
    from .translate import Translator


def group(tr: Translator, key: str) -> Val:
    """``group.count``, ``group.risk`` or ``group.notional`` (``key``: ``group_<name>``)."""
    w = tr.world
    first = "intent.group_count" not in w.vars
    count = w.number("intent.group_count", "count")
    if first:
        w.domain.append(count >= 1)
    if key == "group_count":
        return tr.v("number", count)
    own = tr.intent("requested_risk_abs" if key == "group_risk" else "notional")
    name = f"intent.{key}"
    fresh = name not in w.vars
    term = w.number(name, "amount" if key == "group_risk" else "nonneg")
    null = w.null(name) if key == "group_notional" else w.false
    if fresh:
        # the group holds the intent: its total is at least the intent's, the same when
        # alone; a group's notional is null when any member's is (the intent's too)
        w.domain += [
            z3.Implies(z3.Not(null), all_of(z3.Not(own.null), term >= own.term)),
            z3.Implies(count == 1, all_of(null == own.null, term == own.term)),
        ]
    return tr.v("number", term, null)


def balance(tr: Translator, currency: str, key: str) -> Val:
    """``balance.<currency>.<key>`` (``free`` or ``locked``); ``currency`` may be ``quote``."""
    w = tr.world
    if currency != QUOTE:
        kind = "signed" if key == "free" else "amount"
        term = w.number(f"balance.{currency}.{key}", kind)
        return tr.v("number", term, w.null(f"balance.{currency}"))
    quote = tr.intent("quote_currency")
    value: Any = w.rational(0)
    null: Any = w.true  # a currency the policy does not declare: never reported
    for ccy in reversed(tr.checked.spec.currencies):
        one = balance(tr, ccy, key)
        named = quote.term == w.code(ccy)
        value, null = z3.If(named, one.term, value), z3.If(named, one.null, null)
    return tr.v("number", value, any_of(quote.null, null))


_POSITION_KINDS = {"size": "amount", "notional": "amount", "unrealized_pnl": "signed"}


def position(tr: Translator, key: str) -> Val:
    """``position.<key>`` of the open position the intent names."""
    w = tr.world
    pid = tr.intent("position_id")
    err = any_of(pid.null, w.var("position?missing", "bool"))
    if key == "id":
        return tr.v("string", pid.term, err=err)
    if key == "side":
        first = "position.side" not in w.vars
        side = w.var("position.side", "side")
        if first:
            w.domain.append(side != w.code("flat"))
        return tr.v("string", side, err=err)
    # `age`: seconds from its entry to the intent's time (any sign: a snapshot states the
    # entry), on the 1e-6 grid so that the replayed entry time gives it back exactly
    kind = "signed" if key == "age" else _POSITION_KINDS.get(key)
    if kind is None:
        raise Unknown(f"`position.{key}` has no solver model")
    first = f"position.{key}" not in w.vars
    term = w.number(f"position.{key}", kind)
    if key == "size" and first:
        w.domain.append(term > 0)  # an open position has filled some risk
    return tr.v("number", term, err=err)


__all__ = ["balance", "group", "position"]
