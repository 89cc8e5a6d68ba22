"""A policy's rule chain as one symbolic outcome, exactly as ``Policy.decide`` runs it.

The mode is the most severe tier whose `when` holds (a failing `when` rejects
with an evaluation error), or the override when it is stricter; an override
naming an undeclared mode fails too. Then the rules in order: an `allow`
approves, a failing `require` rejects, a `limit` passes, clips to the grid
below it (when it leaves at least ``min_risk_abs``) or rejects; a rule in
shadow (``enforcement: warn``, or before its ``enforce_from``) warns instead
and never blocks, not even by failing; a failing rule rejects (fail closed).
The chain is translated once per mode, with the mode's values as constants, so
that a multiplier times a live value stays linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from ..document.checker import CheckedPolicy
from ..engine.outcome import APPROVED, ERROR, REJECTED
from ..engine.runtime import RuntimeData
from .terms import all_of, any_of
from .translate import Translator
from .world import GRID, Unknown, World


@dataclass(frozen=True)
class Symbolic:
    """The outcome of one evaluation as terms: status (APPROVED/REJECTED/ERROR), the
    deciding rule (-1 none), the approved amount, whether a clip happened, and per rule
    whether it fired (approved, rejected, clipped or warned)."""

    status: Any
    rule: Any
    amount: Any
    clipped: Any
    fired: tuple[Any, ...]
    mode: Any  # the mode's index
    overridden: Any
    mode_err: Any
    clip_rule: Any  # the last rule that clipped (-1 none)


@dataclass(frozen=True)
class ModeChoice:
    """How the mode of one evaluation is chosen."""

    drawdown: Any  # the tiers' mode index
    err: Any  # a tier's `when` fails or the override names an undeclared mode
    override: Any  # the override's severity (-1 none)


class ChainModel:
    """A checked policy's chain over a :class:`World`."""

    def __init__(self, world: World, checked: CheckedPolicy, data: RuntimeData) -> None:
        self.world = world
        self.checked = checked
        self.data = data
        self.tr = Translator(world, checked, data)
        self._per_mode: dict[tuple[int, int, int | None], Symbolic] = {}

    def staged(self, i: int) -> Any:
        """Whether rule ``i`` runs in shadow for the intent."""
        spec = self.checked.rules[i].spec
        if spec.enforcement == "warn":
            return self.world.true
        if spec.enforce_from is None:
            return self.world.false
        era = self.tr.time().era
        return era <= self.world.stages.index(spec.enforce_from)

    def mode_choice(self) -> ModeChoice:
        self.tr.mode = None
        chosen: Any = self.world.integer(0)
        err: Any = self.world.false
        for state in self.data.modes[1:]:  # mildest first: the most severe is tested first
            when = self.checked.mode_whens.get(state.name)
            if when is None:
                continue
            v = self.tr.expr(when)
            holds = self.tr.truth(v)
            # this tier is tested only when no more severe one held
            err = z3.If(all_of(z3.Not(v.err), holds), self.world.false, any_of(v.err, err))
            chosen = z3.If(all_of(z3.Not(v.err), holds), state.index, chosen)
        severity, bad_override, _ = self.tr.override()
        return ModeChoice(chosen, any_of(err, bad_override), severity)

    def decide(self, only: int | None = None) -> Symbolic:
        """The outcome of the policy for the world's state and intent (``only``: of the
        chain that has rule ``only`` alone, as if the rules before it were not there)."""
        choice = self.mode_choice()
        stricter = choice.override > choice.drawdown
        m = z3.If(stricter, choice.override, choice.drawdown)
        return self.select(m, stricter, choice.err, only)

    def select(self, m: Any, overridden: Any, mode_err: Any, only: int | None = None) -> Symbolic:
        """The outcome with mode ``m`` (a term) in force."""
        per = [self.for_mode(k.index, overridden, only) for k in self.data.modes]

        def pick(field: str, on_err: Any) -> Any:
            term = getattr(per[-1], field)
            for k in range(len(per) - 2, -1, -1):
                term = z3.If(m == k, getattr(per[k], field), term)
            return z3.If(mode_err, on_err, term)

        fired = tuple(
            z3.And(z3.Not(mode_err), _pick_bool(m, [p.fired[i] for p in per]))
            for i in range(len(per[0].fired))
        )
        return Symbolic(
            status=pick("status", self.world.integer(ERROR)),
            rule=pick("rule", self.world.integer(-1)),
            amount=pick("amount", self.world.rational(0)),
            clipped=pick("clipped", self.world.false),
            clip_rule=pick("clip_rule", self.world.integer(-1)),
            fired=fired,
            mode=z3.If(mode_err, 0, m),
            overridden=z3.And(z3.Not(mode_err), overridden),
            mode_err=mode_err,
        )

    def for_mode(self, k: int, overridden: Any, only: int | None = None) -> Symbolic:
        """The chain with mode ``k`` in force (its values constants)."""
        key = (k, overridden.get_id(), only)
        if key in self._per_mode:
            return self._per_mode[key]
        tr = self.tr
        tr.mode = self.data.modes[k]
        tr.overridden = overridden
        amount = tr.intent("requested_risk_abs").term
        live: Any = self.world.true
        clipped: Any = self.world.false
        clip_rule: Any = self.world.integer(-1)
        ends: list[tuple[Any, int, int]] = []  # (condition, status, rule)
        fired: list[Any] = []
        minimum = self.world.rational(self.data.min_risk_abs)
        for i, rule in enumerate(self.checked.rules):
            if only is not None and i != only:
                continue
            spec = rule.spec
            if spec.when_missing == "approve":
                # a missing value lets the intent past this rule, any other failure rejects:
                # not modelled (the failure would be taken for a rejection: a wrong `proved`)
                raise Unknown(f"rule `{spec.id}` says `when_missing: approve`: no solver model")
            shadow = self.staged(i)
            tr.amount = amount
            if rule.when is not None:
                w = tr.expr(rule.when)
                w_err, w_holds = w.err, tr.truth(w)
            else:
                w_err, w_holds = self.world.false, self.world.true
            v = tr.expr(rule.expr)
            # a null condition is false (as in Python); a null limit is not a number: it fails
            null = v.null if spec.kind == "limit" else self.world.false
            err = any_of(w_err, all_of(w_holds, v.err), all_of(w_holds, null))
            runs = all_of(live, z3.Not(err), w_holds)
            failed = all_of(live, err)
            if spec.kind == "allow":
                approve = all_of(runs, tr.truth(v))
                ends.append((approve, APPROVED, i))
                fired.append(approve)
                stop = approve
                warn = all_of(failed, shadow)
            elif spec.kind == "require":
                fail = all_of(runs, z3.Not(tr.truth(v)))
                reject = all_of(fail, z3.Not(shadow))
                ends.append((reject, REJECTED, i))
                warn = any_of(all_of(fail, shadow), all_of(failed, shadow))
                fired.append(any_of(reject, warn))
                stop = reject
            else:
                exceed = all_of(runs, z3.Not(amount <= v.term))
                q = z3.ToReal(z3.ToInt(v.term * GRID)) / GRID
                clip_ok = all_of(q > 0, q >= minimum) if spec.on_exceed == "clip" else None
                clip = all_of(exceed, z3.Not(shadow), clip_ok) if clip_ok is not None else None
                reject = all_of(exceed, z3.Not(shadow))
                if clip is not None:
                    reject = all_of(reject, z3.Not(clip_ok))
                    amount = z3.If(clip, q, amount)
                    clipped = any_of(clipped, clip)
                    clip_rule = z3.If(clip, i, clip_rule)
                ends.append((reject, REJECTED, i))
                warn = any_of(all_of(exceed, shadow), all_of(failed, shadow))
                fired.append(any_of(reject, warn, clip if clip is not None else self.world.false))
                stop = reject
            error = all_of(failed, z3.Not(shadow))
            ends.append((error, ERROR, i))
            live = all_of(live, z3.Not(stop), z3.Not(error))
        status: Any = self.world.integer(APPROVED)
        rule_term: Any = self.world.integer(-1)
        for cond, st, i in reversed(ends):
            status = z3.If(cond, st, status)
            rule_term = z3.If(cond, i, rule_term)
        approved = status == APPROVED
        out = Symbolic(
            status=status,
            rule=rule_term,
            amount=z3.If(approved, amount, self.world.rational(0)),
            clipped=all_of(approved, clipped),
            fired=tuple(fired),
            mode=self.world.integer(k),
            overridden=overridden,
            mode_err=self.world.false,
            clip_rule=clip_rule,
        )
        self._per_mode[key] = out
        return out


def rule_id(world: World, checked: CheckedPolicy, sym: Symbolic) -> tuple[Any, Any]:
    """``decision.rule``: the deciding rule's id as the engine's verdict names it (the
    rejecting or failing rule, the allow that approved, else the last clip; `modes` when the
    mode failed) and whether it is null (none decided)."""
    ids = [rule.spec.id for rule in checked.rules]
    by_index: Any = world.code("modes")
    for i, rid in enumerate(ids):
        by_index = z3.If(sym.rule == i, world.code(rid), by_index)
    by_clip: Any = world.code("modes")
    for i, rid in enumerate(ids):
        by_clip = z3.If(sym.clip_rule == i, world.code(rid), by_clip)
    approved = sym.status == APPROVED
    use_clip = z3.And(approved, sym.rule < 0, sym.clipped)
    term = z3.If(sym.mode_err, world.code("modes"), z3.If(use_clip, by_clip, by_index))
    null = z3.And(z3.Not(sym.mode_err), approved, sym.rule < 0, z3.Not(sym.clipped))
    return term, null


def _pick_bool(m: Any, values: list[Any]) -> Any:
    term = values[-1]
    for k in range(len(values) - 2, -1, -1):
        term = z3.If(m == k, values[k], term)
    return term
