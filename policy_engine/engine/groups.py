"""An order group decided all or none: the one decision path the control core
(:mod:`policy_engine.control.groups`) and ``policy explain`` share.

Every member is decided in order as a member of the group (``group.count``, ``group.risk``,
``group.notional``: the same for every member), each against the portfolio with the members
before it reserved: the caller's ``reserve`` holds a member's reservation and hands back the
state the next member is decided against (the core reserves in its book and returns its
state; ``policy explain`` adds the reservation to a snapshot with :func:`with_reservation`).
The group is approved only if every member is approved in full: the first member rejected,
or clipped (a bracket's legs must keep their sizes), decides the group; members after it are
not evaluated. :func:`group_facts` then says what each member's record says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..decision_codes import GROUP_REJECTED
from .contracts import BucketState, PortfolioIntent, PortfolioSnapshot, from_units, to_units
from .verdict import DecisionFacts, outcome_facts, refusal_facts

if TYPE_CHECKING:
    from .policy import ModeInfo


class Member(NamedTuple):
    """One member as decided: the subject the chain read, the state it read, its facts,
    and what ``reserve`` returned for it (None: not reserved)."""

    intent: PortfolioIntent
    subject: PortfolioIntent
    state: Any
    facts: DecisionFacts
    held: Any


class Failure(NamedTuple):
    """The member that decided a rejected group, its rule (None: refused before any rule)
    and why."""

    member: str
    rule: str | None
    why: str


def group_totals(members: Sequence[PortfolioIntent]) -> tuple[int, float, float | None]:
    """``group.count``, ``group.risk`` (exact) and ``group.notional`` (null if any member
    carries none)."""
    notionals = [m.requested_notional_abs for m in members]
    risk = from_units(sum(to_units(m.requested_risk_abs) for m in members))
    notional = None if None in notionals else sum(n for n in notionals if n is not None)
    return len(members), risk, notional


def decide_group(
    policy: Any,
    group_id: str,
    members: Sequence[PortfolioIntent],
    state: Any,
    reserve: Callable[[PortfolioIntent, DecisionFacts, Any], tuple[Any, Any]],
) -> tuple[list[Member], Failure | None]:
    """Decide ``members`` in order until one fails; ``reserve(member, facts)`` holds an
    approved member that adds risk to ``state`` and returns ``(held, next state)``. The caller undoes
    what it held when the group failed."""
    count, risk, notional = group_totals(members)
    decided: list[Member] = []
    for member in members:
        subject = member.in_group(count, risk, notional)
        facts = outcome_facts(policy, subject, state, policy.decide(subject, state))
        failed: Failure | None = None
        held, before = None, state
        if facts["approved"] and facts["approved_risk_abs"] < member.requested_risk_abs:
            clip = facts["clips"][-1]
            why = f"{clip.rule_id} would clip it from {clip.from_risk} to {clip.to_risk}"
            failed = Failure(member.intent_id, clip.rule_id, why)
            _rejected(facts)
            facts["rule_id"] = clip.rule_id
            facts["context"] = {**facts["context"], "member": member.intent_id}
            facts["reasons"] = [f"group {group_id}: {why}", *facts["reasons"]]
        elif not facts["approved"]:
            failed = Failure(member.intent_id, facts["rule_id"], facts["decision_code"])
        elif not member.risk_reducing:
            held, state = reserve(member, facts, state)
        decided.append(Member(member, subject, before, facts, held))
        if failed is not None:
            return decided, failed
    return decided, None


def group_facts(
    group_id: str,
    members: Sequence[PortfolioIntent],
    decided: list[Member],
    failed: Failure | None,
    mode: ModeInfo,
) -> list[tuple[PortfolioIntent, DecisionFacts, Any]]:
    """Every member's facts as its decision record states them, in order: a rejected
    group's other members (reached or not) are ``rejected_group``, naming the member and
    the rule that decided it."""
    by_id = {m.intent.intent_id: m for m in decided}
    rows: list[tuple[PortfolioIntent, DecisionFacts, Any]] = []
    for intent in members:
        found = by_id.get(intent.intent_id)
        if found is not None:
            facts, held = found.facts, found.held
        else:  # not reached: another member failed first
            requested = float(intent.requested_risk_abs)
            facts = refusal_facts(intent.intent_id, requested, GROUP_REJECTED, "", "GROUP", mode)
            held = None
        if failed is not None and intent.intent_id != failed.member:
            _rejected(facts)
            facts["rule_id"] = failed.rule
            facts["context"] = {"member": failed.member}
            facts["reasons"] = [
                f"group {group_id}: member {failed.member} was refused"
                + (f" by {failed.rule}" if failed.rule else f" ({failed.why})")
            ]
        rows.append((intent, facts, held))
    return rows


def _rejected(facts: DecisionFacts) -> None:
    """A member's facts when its group is rejected (its rule and reasons set by the caller)."""
    facts["approved"] = False
    facts["decision_code"] = GROUP_REJECTED
    facts["approved_risk_abs"] = 0.0


def with_reservation(
    policy: Any, snapshot: PortfolioSnapshot, member: PortfolioIntent, approved: float
) -> PortfolioSnapshot:
    """``snapshot`` with ``member``'s reservation of ``approved`` risk held, as the control
    core's book holds it: reserved risk, one more live trade, the side's risk, the reserved
    notional and its side's notional in the portfolio and in each of the member's buckets
    (strategy, symbol, cohort, scopes), and its notional locked in its quote currency."""
    risk, notional = approved, member.requested_notional_abs or 0.0
    side = "long" if member.side == "long" else "short"

    def add(bucket: Any) -> dict[str, Any]:
        def plus(name: str, amount: float) -> float:
            return from_units(to_units(getattr(bucket, name)) + to_units(amount))

        return {
            "reserved_risk": plus("reserved_risk", risk),
            "active_trades": bucket.active_trades + 1,
            f"{side}_risk": plus(f"{side}_risk", risk),
            "reserved_notional": plus("reserved_notional", notional),
            f"{side}_notional": plus(f"{side}_notional", notional),
        }

    def held(table: dict[str, BucketState], key: str | None) -> dict[str, BucketState]:
        if key is None:
            return table
        bucket = table.get(key) or BucketState()
        return {**table, key: bucket.model_copy(update=add(bucket))}

    update = add(snapshot)
    update["strategies"] = held(snapshot.strategies, member.strategy)
    update["symbols"] = held(snapshot.symbols, member.symbol)
    cohort = policy.cohort_of(member.symbol, member.correlation_bucket)
    update["cohorts"] = held(snapshot.cohorts, cohort)
    scopes = policy.scopes_of(lambda name: getattr(member, name, None)) or {}
    update["scopes"] = {
        **snapshot.scopes,
        **{s: held(snapshot.scopes.get(s, {}), key) for s, key in scopes.items()},
    }
    currency = member.quote_currency
    if currency is not None and currency in snapshot.balances and notional:
        was = snapshot.balances[currency]
        update["balances"] = {
            **snapshot.balances,
            currency: {
                "free": from_units(to_units(was.get("free", 0.0)) - to_units(notional)),
                "locked": from_units(to_units(was.get("locked", 0.0)) + to_units(notional)),
            },
        }
    return snapshot.model_copy(update=update)


__all__ = ["Failure", "Member", "decide_group", "group_facts", "group_totals", "with_reservation"]
