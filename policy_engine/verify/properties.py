"""The properties `policy verify` proves, each a query for a violating state and intent.

A property is *proved* when no state and intent within the domains violates it
(the query is unsatisfiable), *violated* when the solver finds one AND the real
engine decides that trade as the solver predicted (the counterexample replays),
and *unknown* otherwise: the solver gave up or timed out, a term is not
expressible, or the engine disagreed with the model (a translation bug, said so).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from ..decision_codes import APPROVED_CLIPPED, APPROVED_FULL, EVAL_ERROR
from ..document.names import Ref, Source
from ..engine.outcome import APPROVED, ERROR
from ..engine.policy import Policy
from ..lang import syntax as s
from . import replay as rp
from .chain import ChainModel, Symbolic, rule_id
from .terms import all_of, any_of
from .world import Unknown, World

BUILTIN = ("caps-hold", "flatten-only-holds", "modes-monotonic", "rules-reachable", "never-errors")
AGAINST = ("no-wider", "equivalent")


@dataclass
class Case:
    """One trade of a counterexample, with the engine's decision on it."""

    policy: Policy
    state: dict[str, Any]
    intent: dict[str, Any]
    decision: dict[str, Any]
    note: str = ""


@dataclass
class Result:
    policy: str
    property: str
    status: str  # proved | violated | unknown
    seconds: float = 0.0
    reason: str = ""
    cases: list[Case] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        counter = None
        if self.cases:
            counter = [
                {"note": c.note, "state": c.state, "intent": c.intent, "decision": c.decision}
                for c in self.cases
            ]
        return {
            "policy": self.policy,
            "property": self.property,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "counterexample": counter,
        }


@dataclass
class Query:
    """A violation to look for: the condition, and the trades that show it (each a
    policy, the outcome the solver predicts for it and the override it runs with)."""

    condition: Any
    runs: Sequence[tuple[Policy, Symbolic, str | None]]
    note: str


class _Found(Exception):
    """A violation and its trades (internal: it ends a property's check)."""

    def __init__(self, reason: str, cases: list[Case]) -> None:
        super().__init__(reason)
        self.reason, self.cases = reason, cases


def solve(world: World, query: Query, timeout: float) -> list[Case] | None:
    """None when no violation exists; the replayed trades when one does. Raises Unknown."""
    solver = z3.Solver(ctx=world.ctx)
    solver.set("timeout", max(1, int(timeout * 1000)))
    solver.add(*world.domain, query.condition)
    answer = solver.check()
    if answer == z3.unsat:
        return None
    if answer != z3.sat:
        raise Unknown(f"the solver gave up ({solver.reason_unknown()})")
    model = rp.simplify(solver, world)
    cases = []
    for policy, sym, override in query.runs:
        try:
            state, intent = rp.trade(rp.values(model, world), world, policy)
            if override is not None:
                state["mode_override"] = override
            engine, decision = rp.replay(policy, state, intent)
        except ValueError as exc:
            reason = f"the solver's model is not a valid trade ({exc}): a translation bug"
            raise Unknown(reason) from None
        expected = rp.predicted(model, sym)
        if not rp.agrees(engine, expected):
            raise Unknown(
                f"the engine decides the solver's model differently ({decision['decision_code']}"
                f", {engine[2]}) than predicted: a translation bug, not a counterexample"
            )
        cases.append(Case(policy, state, intent, decision, query.note))
    return cases


def refs(policy: Policy) -> Iterator[Ref]:
    checked = policy.checked
    roots = [*checked.mode_whens.values()]
    for rule in checked.rules:
        roots += [rule.expr, *([rule.when] if rule.when is not None else [])]
    for root in roots:
        for node in s.walk(root):
            if isinstance(node, s.Name):
                ref = checked.scope.resolve(node.path)
                if isinstance(ref, Ref):
                    yield ref


class Verifier:
    """The built-in properties of one policy (and `--against` an older one)."""

    def __init__(self, policy: Policy, timeout: float, old: Policy | None = None) -> None:
        self.policy, self.timeout, self.old = policy, timeout, old
        checked = [policy.checked] + ([old.checked] if old is not None else [])
        self.world = World.of(checked)
        self.model = ChainModel(self.world, policy.checked, policy.data)
        self.old_model = ChainModel(self.world, old.checked, old.data) if old else None

    def run(self, name: str) -> Result:
        start = time.perf_counter()
        check: Callable[[], str]
        if name in BUILTIN or name in AGAINST:
            check = getattr(self, "_" + name.replace("-", "_"))
        else:
            check = lambda: self._own(name)  # noqa: E731 (a policy's own property)
        try:
            result = Result(self.policy.path or self.policy.name, name, "proved", reason=check())
        except _Found as found:
            result = Result(self.policy.path or self.policy.name, name, "violated")
            result.reason, result.cases = found.reason, found.cases
        except (Unknown, z3.Z3Exception) as exc:
            result = Result(self.policy.path or self.policy.name, name, "unknown", reason=str(exc))
        result.seconds = time.perf_counter() - start
        return result

    def _look(self, query: Query, reason: str) -> None:
        cases = solve(self.world, query, self.timeout)
        if cases is not None:
            raise _Found(reason, cases)

    def _one(self, sym: Symbolic, condition: Any, note: str, reason: str) -> None:
        self._look(Query(condition, [(self.policy, sym, None)], note), reason)

    def _not_reducing(self) -> Any:
        return z3.Not(self.model.tr.intent("risk_reducing").term)

    # --- the built-in properties -----------------------------------------------------------
    def _caps_hold(self) -> str:
        sym = self.model.decide()
        caps = 0
        for i, rule in enumerate(self.policy.checked.rules):
            cap = rule.expr
            if rule.spec.kind != "limit" or rule.spec.enforcement == "warn":
                continue
            if not (isinstance(cap, s.Binary) and cap.op == "-" and isinstance(cap.right, s.Name)):
                continue
            ref = self.policy.checked.scope.resolve(cap.right.path)
            if not isinstance(ref, Ref) or ref.key != "heat":
                continue
            caps += 1
            tr = self.model.tr
            heat = tr.expr(cap.right)
            holds: list[Any] = []
            for mode in self.policy.data.modes:
                tr.mode, tr.overridden = mode, sym.overridden
                tr.amount = tr.intent("requested_risk_abs").term
                x = tr.expr(cap.left)
                when = tr.expr(rule.when) if rule.when is not None else None
                ok = all_of(z3.Not(x.err), z3.Not(x.null), heat.term <= x.term)
                if when is not None:
                    ok = all_of(ok, z3.Not(when.err), tr.truth(when))
                broken = heat.term + sym.amount > x.term
                holds.append(all_of(sym.mode == mode.index, ok, broken))
            condition = all_of(
                z3.Not(heat.err),
                z3.Not(self.model.staged(i)),
                self._not_reducing(),
                sym.status == APPROVED,
                any_of(self.world.false, *holds),
            )
            rid = rule.spec.id
            note = f"caps-hold: `{s.unparse(cap.right)}` is within the cap of `{rid}` before, above it after"
            self._one(sym, condition, note, f"`{rid}`: an approval takes the bucket above its cap")
        return f"{caps} cap(s) hold" if caps else "no enforced `limit: X - <bucket>.heat` cap"

    def _flatten_only_holds(self) -> str:
        sym = self.model.decide()
        modes = [m for m in self.policy.data.modes if m.values.get("flatten_only") is True]
        if not modes:
            return "no flatten-only mode"
        in_mode = any_of(self.world.false, *(sym.mode == m.index for m in modes))
        condition = all_of(in_mode, sym.status == APPROVED, self._not_reducing())
        note = "flatten-only-holds: an intent that reduces no risk approved in a flatten-only mode"
        self._one(
            sym, condition, note, "an intent that reduces no risk is approved in flatten-only"
        )
        return "only risk-reducing intents are approved in " + ", ".join(m.name for m in modes)

    def _modes_monotonic(self) -> str:
        choice = self.model.mode_choice()
        modes = self.policy.data.modes
        # Adjacent modes suffice: for a state whose tiers give a mode at most j, every mode
        # from j up can be in force (by an override), so k never approving more than k - 1
        # for each k chains into "never more than any milder one".
        queries = []
        for j in range(len(modes) - 1):
            k = j + 1
            mild = self.model.select(self.world.integer(j), choice.drawdown < j, self.world.false)
            severe = self.model.select(self.world.integer(k), self.world.true, self.world.false)
            wider = any_of(mild.status != APPROVED, severe.amount > mild.amount)
            condition = all_of(choice.drawdown <= j, severe.status == APPROVED, wider)
            a, b = modes[j].name, modes[k].name
            note = f"modes-monotonic: the same state and intent in {a} and in {b}"
            runs = [(self.policy, mild, a), (self.policy, severe, b)]
            queries.append(
                (Query(condition, runs, note), f"`{b}` approves more than the milder `{a}`")
            )
        if not queries:
            return "one mode: nothing to compare"
        # One query for every pair proves it fastest (the solver shares the work); only when
        # it finds a violation is each pair asked, for the pair and its trades.
        anywhere = all_of(z3.Not(choice.err), any_of(*(q.condition for q, _ in queries)))
        if solve(self.world, Query(anywhere, [], ""), self.timeout) is not None:
            for query, reason in queries:
                query.condition = all_of(z3.Not(choice.err), query.condition)
                self._look(query, reason)
            raise Unknown("a mode pair approves more, but no single pair was found again")
        return f"{len(modes)} mode(s): a more severe one never approves more"

    def _rules_reachable(self) -> str:
        """Every rule decides for some state and intent. A rule that never does although it
        would, were it first, is shadowed by the rules before it: a violation. One that could
        not even alone is a switch of the constants (`enabled: true` everywhere): noted."""
        sym = self.model.decide()
        switches = []
        for i, rule in enumerate(self.policy.checked.rules):
            query = Query(sym.fired[i], [(self.policy, sym, None)], "")
            if solve(self.world, query, self.timeout) is not None:
                continue
            alone = self.model.decide(only=i)
            if solve(self.world, Query(alone.fired[0], [], ""), self.timeout) is None:
                switches.append(rule.spec.id)
                continue
            reason = f"rule `{rule.spec.id}` never decides: the rules before it decide first"
            raise _Found(reason, [])
        text = f"no rule of {len(self.policy.rules)} is shadowed by the rules before it"
        if switches:
            names = ", ".join(f"`{n}`" for n in switches)
            text += f"; {names} never decides with the declared constants (a switch)"
        return text

    def _never_errors(self) -> str:
        sym = self.model.decide()
        declared = self._declared(self.model, self.policy)
        note = "never-errors: a rule fails to evaluate"
        self._one(sym, all_of(declared, sym.status == ERROR), note, "a rule fails to evaluate")
        return "no rule fails for an intent whose names the policy declares"

    def _declared(self, model: ChainModel, policy: Policy) -> Any:
        """The premise of never-errors: the intent names what the policy declares (an
        undeclared strategy, symbol, cohort or scope key fails closed by design)."""
        tr, w, data = model.tr, self.world, policy.data
        read = list(refs(policy))
        sources = {r.source for r in read}
        out: list[Any] = [w.true]
        strategy = tr.intent("strategy").term
        by_strategy = {Source.STRATEGY_CFG, Source.STRATEGY_LIVE}
        if sources & by_strategy or any(
            r.source is Source.WINDOW and r.scope == "strategy" for r in read
        ):
            out.append(any_of(w.false, *(strategy == w.code(n) for n in data.strategies)))
        if Source.SYMBOL_CFG in sources:
            out.append(
                any_of(w.false, *(tr.intent("symbol").term == w.code(n) for n in data.symbols))
            )
        if Source.COHORT_CFG in sources:
            out.append(any_of(w.false, *(tr.cohort() == w.code(n) for n in data.cohorts)))
        for ref in read:
            if ref.source is Source.SCOPE_CFG:
                key = tr.intent(tr.key_field(ref.scope)).term
                out.append(any_of(w.false, *(key == w.code(n) for n in data.scopes[ref.scope])))
        _sev, bad, _null = tr.override()
        return all_of(z3.Not(bad), *out)

    def _own(self, name: str) -> str:
        """A policy's own property: its `assert` holds for every state and intent, read with
        the mode in force and the decision made (a failing assert is a violation too)."""
        node = self.policy.checked.properties[name]
        sym, tr = self.model.decide(), self.model.tr
        tr.decision, tr.decision_rule = sym, rule_id(self.world, self.policy.checked, sym)
        broken: list[Any] = [self.world.false]
        for mode in self.policy.data.modes:
            tr.mode, tr.overridden = mode, sym.overridden
            tr.amount = tr.intent("requested_risk_abs").term
            v = tr.expr(node)
            holds = all_of(z3.Not(v.err), tr.truth(v))
            broken.append(all_of(sym.mode == mode.index, z3.Not(holds)))
        tr.decision = None
        text = s.unparse(node)
        note = f"{name}: `{text}` does not hold"
        self._one(sym, any_of(*broken), note, f"`{text}` does not hold for this trade")
        return f"`{text}` holds for every state and intent"

    # --- between versions --------------------------------------------------------------------
    def _no_wider(self) -> str:
        assert self.old is not None and self.old_model is not None
        new, old = self.model.decide(), self.old_model.decide()
        condition = all_of(
            new.status == APPROVED, any_of(old.status != APPROVED, new.amount > old.amount)
        )
        note = f"no-wider: v{self.policy.version} approves more than v{self.old.version}"
        runs = [(self.policy, new, None), (self.old, old, None)]
        self._look(Query(condition, runs, note), "the new version approves more than the old")
        return "the new version never approves more than the old"

    def _equivalent(self) -> str:
        assert self.old is not None and self.old_model is not None
        new, old = self.model.decide(), self.old_model.decide()
        differs = any_of(
            new.status != old.status,
            new.amount != old.amount,
            self._code(self.model, new) != self._code(self.old_model, old),
        )
        note = f"equivalent: v{self.policy.version} and v{self.old.version} decide differently"
        runs = [(self.policy, new, None), (self.old, old, None)]
        self._look(Query(differs, runs, note), "the versions decide differently")
        return "both versions make the same decision for every state and intent"

    def _code(self, model: ChainModel, sym: Symbolic) -> Any:
        w = self.world
        code: Any = w.code(EVAL_ERROR)
        for i, rule in enumerate(model.checked.rules):
            code = z3.If(sym.rule == i, w.code(rule.spec.code), code)
        code = z3.If(sym.status == ERROR, w.code(EVAL_ERROR), code)
        clipped = z3.If(sym.clipped, w.code(APPROVED_CLIPPED), w.code(APPROVED_FULL))
        return z3.If(sym.status == APPROVED, clipped, code)


def verify(
    policy: Policy,
    names: list[str],
    timeout: float,
    old: Policy | None = None,
) -> list[Result]:
    """Each property of ``names`` for ``policy`` (``old``: the version it replaces)."""
    verifier = Verifier(policy, timeout, old)
    return [verifier.run(name) for name in names]
