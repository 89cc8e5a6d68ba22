"""Expressions of a checked policy -> exact z3 terms, with when each one fails.

The same AST the code generator and the interpreter read, with the same
meaning: every value carries whether it is null and whether evaluating it
fails (a division by zero, an undeclared strategy, a null operand, a null
scope key), with the short-circuits of ``and``, ``or``, ``if`` and comparison
chains. Functions come from the one registry (``Function.solver``); a term
that is not expressible raises :class:`~.world.Unknown` with the reason.
"""

from __future__ import annotations

from typing import Any, assert_never

import z3

from ..document.checker import CheckedPolicy
from ..document.model import NONNEGATIVE_QUANTITIES
from ..document.names import LIVE_FIELDS, Ref, Source
from ..engine.outcome import APPROVED
from ..engine.runtime import ModeState, RuntimeData
from ..lang import syntax as s
from ..lang.functions import FUNCTIONS
from .book import balance, group, position
from .terms import ExactAlgebra, all_of, any_of, fold, mul
from .world import (
    AMOUNT_FIELDS,
    COUNT_FIELDS,
    NOTIONAL_FIELDS,
    Time,
    Unknown,
    Val,
    World,
)

_STRING_INTENT = {
    "intent_id": "name",
    "strategy": "name",
    "symbol": "name",
    "side": "side",
    "template_id": "string",
    "playbook_id": "string",
    "regime_state": "string",
    "correlation_bucket": "name",
    "quote_currency": "name",
    "position_id": "name",
}
NULLABLE_INTENT = frozenset(
    {
        "template_id",
        "playbook_id",
        "regime_state",
        "correlation_bucket",
        "requested_notional_abs",
        "quote_currency",
        "position_id",
    }
)
INPUT_KINDS = {"number": "real", "string": "string", "bool": "bool", "time": "time"}


class Translator(ExactAlgebra):
    """One policy's expressions over a :class:`World`; an :class:`Algebra` for functions."""

    def __init__(self, world: World, checked: CheckedPolicy, data: RuntimeData) -> None:
        self.world = world
        self.checked = checked
        self.data = data
        self.mode: ModeState | None = None  # the mode the chain is translated for
        self.overridden: Any = world.false
        self.amount: Any = world.rational(0)
        self.decision: Any = None  # the Symbolic outcome a property reads as `decision`
        self.decision_rule: tuple[Any, Any] = (None, None)

    def v(self, kind: str, term: Any, null: Any = None, err: Any = None, py: Any = None) -> Val:
        """A value; null and failing are false unless given."""
        false = self.world.false
        return Val(kind, term, false if null is None else null, false if err is None else err, py)

    # --- the intent and the state ---------------------------------------------------------
    def intent(self, key: str) -> Val:
        w = self.world
        null = w.null(f"intent.{key}") if key in NULLABLE_INTENT else w.false
        if key in _STRING_INTENT:
            self._hint(f"intent.{key}", key)
            return self.v("string", w.var(f"intent.{key}", _STRING_INTENT[key]), null)
        if key == "requested_risk_abs":
            return self.v("number", w.number("intent.requested_risk_abs", "amount"))
        if key in ("requested_notional_abs", "notional"):  # one field, two names
            null = w.null("intent.requested_notional_abs")
            return self.v("number", w.number("intent.requested_notional_abs", "nonneg"), null)
        if key == "reduce_only":
            return self.v("bool", w.var("intent.reduce_only", "bool"))
        if key == "risk_reducing":
            side = self.intent("side").term
            flat = side == w.code("flat")
            return self.v("bool", z3.Or(flat, self.intent("reduce_only").term))
        if key.startswith("group_"):
            return group(self, key)
        spec = self.checked.spec.inputs.get(key)
        if spec is None:
            raise Unknown(f"the intent field `{key}` has no solver model")
        kind = INPUT_KINDS[spec.type]
        self._hint(f"input.{key}", key)
        null = w.null(f"input.{key}") if spec.default is None and not spec.required else w.false
        if kind == "time":
            return self.v("time", w.time(f"input.{key}"), null)
        if kind == "real":
            return self.v("number", w.number(f"input.{key}", "number"), null)
        return self.v(kind, w.var(f"input.{key}", kind), null)

    def _hint(self, name: str, key: str) -> None:
        """The declared names a counterexample shows rather than a fresh one."""
        data = self.data
        found = {"strategy": list(data.strategies), "symbol": [*data.symbols, *data.cohort_of]}
        for scope, fields in data.scope_fields.items():
            if len(fields) == 1:  # (a composite key's values name no single field)
                found.setdefault(fields[0], []).extend(data.scopes[scope])
        hints = self.world.hints.setdefault(name, [])
        hints += [n for n in found.get(key, ()) if n not in hints]

    def time(self) -> Time:
        return self.world.time("intent.timestamp")

    def cohort(self) -> Any:
        w = self.world
        symbol = self.intent("symbol").term
        bucket = self.intent("correlation_bucket")
        term = z3.If(bucket.null, symbol, bucket.term)
        for sym, cohort in sorted(self.data.cohort_of.items(), reverse=True):
            term = z3.If(symbol == w.code(sym), w.code(cohort), term)
        return term

    def live(self, bucket: str, key: str) -> Val:
        w = self.world
        if key == "heat":
            return self._arith(
                "+", self.live(bucket, "active_risk"), self.live(bucket, "reserved_risk")
            )
        if key == "net_risk":
            return self._arith("-", self.live(bucket, "long_risk"), self.live(bucket, "short_risk"))
        if key == "gross_notional":
            return self._arith(
                "+", self.live(bucket, "active_notional"), self.live(bucket, "reserved_notional")
            )
        if key == "net_notional":
            return self._arith(
                "-", self.live(bucket, "long_notional"), self.live(bucket, "short_notional")
            )
        if key in AMOUNT_FIELDS or key in NOTIONAL_FIELDS:
            return self.v("number", w.number(f"{bucket}.{key}", "amount"))
        if key == "unrealized_pnl":
            return self.v("number", w.number(f"{bucket}.{key}", "signed"))
        if key == "unrealized_drawdown":  # a ratio from the book's history: any value >= 0
            return self.v("number", w.number(f"{bucket}.{key}", "nonneg"))
        if key in COUNT_FIELDS:
            return self.v("number", w.number(f"{bucket}.{key}", "count"))
        if key == "day_realized_pnl":
            return self.v("number", w.number(f"{bucket}.{key}", "signed"))
        raise Unknown(f"`{bucket}.{key}` has no solver model")

    def portfolio(self, key: str) -> Val:
        w = self.world
        equity = w.number("portfolio.equity", "positive")
        if key == "equity":
            return self.v("number", equity)
        if key == "drawdown":
            return self.v("number", w.number("portfolio.drawdown", "unit"))
        if key == "peak_equity":
            # peak * (1 - drawdown) = equity: not linear; z3 may give up (then: unknown)
            known = "portfolio.peak_equity" in w.vars
            peak = w.number("portfolio.peak_equity", "nonneg")
            drawdown = w.number("portfolio.drawdown", "unit")
            if not known:
                w.domain.append(peak * (1 - drawdown) == equity)
            return self.v("number", peak)
        if key == "day_start_equity":
            return self.v("number", w.number("portfolio.day_start_equity", "nonneg"))
        if key == "day_pnl":
            return self.v("number", equity - w.number("portfolio.day_start_equity", "nonneg"))
        if key in LIVE_FIELDS:
            return self.live("portfolio", key)
        raise Unknown(f"`portfolio.{key}` has no solver model")

    def override(self) -> tuple[Any, Any, Any]:
        """The override's severity in this policy (-1 none), and whether naming an undeclared
        mode fails the evaluation."""
        w = self.world
        name = w.var("state.mode_override", "mode")
        null = w.null("state.mode_override")
        severity: Any = w.integer(-1)
        for mode in self.data.modes:
            severity = z3.If(name == w.code(mode.name), mode.index, severity)
        declared = any_of(w.false, *(name == w.code(m.name) for m in self.data.modes))
        return z3.If(null, -1, severity), all_of(z3.Not(null), z3.Not(declared)), null

    # --- constants ---------------------------------------------------------------------------
    def const(self, value: Any) -> Val:
        if isinstance(value, bool):
            return self.v("bool", z3.BoolVal(value, self.world.ctx), py=value)
        if isinstance(value, int | float):
            return self.v("number", self.world.rational(value), py=value)
        if isinstance(value, str):
            return self.v("string", self.world.code(value), py=value)
        if isinstance(value, list | tuple):
            return self.v("list", tuple(self.const(v) for v in value), py=list(value))
        if isinstance(value, dict):
            return self.v("map", None, py=value)
        raise Unknown(f"the constant {value!r} has no solver model")

    def table(self, table: dict[str, dict[str, Any]], name: Any, key: str) -> Val:
        """A configuration value of the intent's strategy/symbol/cohort/scope key ``name``:
        fails when the name is not declared or has no ``key``."""
        has = [(n, cfg[key]) for n, cfg in sorted(table.items()) if key in cfg]
        if not has:
            return self.v("number", self.world.rational(0), err=self.world.true)
        values = [self.const(v) for _, v in has]
        kinds = {v.kind for v in values}
        if len(kinds) != 1 or values[0].kind not in ("number", "bool", "string"):
            raise Unknown(f"`{key}` is not one number, bool or string in every entry")
        term = values[-1].term
        for (n, _), v in zip(reversed(has[:-1]), reversed(values[:-1]), strict=True):
            term = z3.If(name == self.world.code(n), v.term, term)
        found = any_of(self.world.false, *(name == self.world.code(n) for n, _ in has))
        return self.v(values[0].kind, term, err=z3.Not(found))

    # --- names -----------------------------------------------------------------------------
    def name(self, node: s.Name) -> Val:
        """The solver backend of name resolution: one case per :class:`Source`, like the code
        generator's and the interpreter's (mypy lists this match when a source is added)."""
        if node.path[0] == "decision":  # a property's reading of the decision
            return self.decided(node.path[1])
        ref = self.checked.scope.resolve(node.path)
        assert isinstance(ref, Ref)
        key, w, data = ref.key, self.world, self.data
        strategy = self.intent("strategy").term
        undeclared = z3.Not(any_of(w.false, *(strategy == w.code(n) for n in data.strategies)))
        match ref.source:
            case Source.INTENT:
                return self.intent(key)
            case Source.INTENT_RISK:
                return self.v("number", self.amount)
            case Source.INTENT_TIME:
                return self.v("time", self.time())
            case Source.INTENT_COHORT | Source.COHORT_NAME:
                return self.v("string", self.cohort())
            case Source.PORTFOLIO:
                return self.portfolio(key)
            case Source.MODE:
                assert self.mode is not None
                if key == "source":
                    source = z3.If(self.overridden, w.code("override"), w.code("drawdown"))
                    return self.v("string", source)
                return self.const(self.mode.values[key])
            case Source.PARAM:
                value = data.params[key]
                for part in ref.rest:
                    value = value[part]
                return self.const(value)
            case Source.STRATEGY_NAME:
                return self.intent("strategy")
            case Source.SYMBOL_NAME:
                return self.intent("symbol")
            case Source.LATCH:
                return self.v("bool", w.var(f"latch.{key}", "bool"))
            case Source.BALANCE:
                return balance(self, str(ref.scope), key)
            case Source.LOCK:  # whether a timed lock holds: any state may hold one
                bucket, err = self._bucket(ref.scope)
                if ref.scope == "strategy":
                    err = undeclared
                return self.v("bool", w.var(f"{bucket}.lock.{key}", "bool"), err=err)
            case Source.WINDOW:
                # a count is a whole number; a drawdown, or a sum, min or max of a quantity
                # never below 0 (risk, notional), an amount; of realized P&L or fees (a
                # rebate is a negative fee) an amount of any sign
                spec = self.checked.spec.windows.get(key)
                kind = "count" if spec is None or spec.aggregate is None else "signed"
                if spec is not None and (
                    spec.aggregate == "drawdown" or spec.quantity in NONNEGATIVE_QUANTITIES
                ):
                    kind = "amount"
                bucket, err = self._bucket(ref.scope)
                if ref.scope == "strategy":
                    err = undeclared
                return self.v("number", w.number(f"{bucket}.windows.{key}", kind), err=err)
            case Source.SCOPE_NAME | Source.SCOPE_CFG | Source.SCOPE_LIVE:
                return self._scope(ref)
            case Source.STRATEGY_CFG:
                return self.table(data.strategies, strategy, key)
            case Source.STRATEGY_LIVE:
                live = self.live("strategy", key)
                return self.v(live.kind, live.term, err=undeclared)
            case Source.SYMBOL_CFG:
                return self.table(data.symbols, self.intent("symbol").term, key)
            case Source.SYMBOL_LIVE:
                return self.live("symbol", key)
            case Source.COHORT_CFG:
                return self.table(data.cohorts, self.cohort(), key)
            case Source.COHORT_LIVE:
                return self.live("cohort", key)
            case Source.COHORT_SYMBOLS:  # read only by `in` (_compare)
                return self.v("cohort_symbols", None)
            case Source.POSITION:
                return position(self, key)
            case _:
                assert_never(ref.source)

    def decided(self, key: str) -> Val:
        if self.decision is None:
            raise Unknown("`decision` is read outside a property")
        sym = self.decision
        if key == "approved":
            return self.v("bool", sym.status == APPROVED)
        if key == "approved_risk_abs":
            return self.v("number", sym.amount)
        term, null = self.decision_rule
        return self.v("string", term, null)

    def key_field(self, scope: str) -> str:
        """The intent field a scope is keyed by (Unknown for a composite key: the prover
        does not model joined keys)."""
        fields = self.data.scope_fields[scope]
        if len(fields) != 1:
            raise Unknown(f"scope `{scope}` has a composite key, which the prover does not model")
        return fields[0]

    def _bucket(self, namespace: str) -> tuple[str, Any]:
        if namespace in self.data.scope_fields:
            selected = self.intent(self.key_field(namespace))
            return namespace, selected.null
        return namespace, self.world.false

    def _scope(self, ref: Ref) -> Val:
        selected = self.intent(self.key_field(ref.scope))
        if ref.source is Source.SCOPE_NAME:
            return self.v("string", selected.term, err=selected.null)
        if ref.source is Source.SCOPE_LIVE:
            live = self.live(ref.scope, ref.key)
            return self.v(live.kind, live.term, err=any_of(selected.null, live.err))
        found = self.table(self.data.scopes[ref.scope], selected.term, ref.key)
        return self.v(found.kind, found.term, err=any_of(selected.null, found.err))

    # --- expressions ---------------------------------------------------------------------
    def expr(self, node: s.Expr) -> Val:
        match node:
            case s.Num(value=v) | s.Str(value=v) | s.Bool(value=v):
                return self.const(v)
            case s.ListLit(items=items):
                vals = tuple(self.expr(i) for i in items)
                return self.v("list", vals, err=any_of(self.world.false, *(v.err for v in vals)))
            case s.Name():
                return self.name(node)
            case s.Index(target=target, key=key):
                t, k = self.expr(target), self.expr(key)
                if t.py is None or k.py is None:
                    raise Unknown(
                        f"`{s.unparse(node)}` indexes with a value known only at run time"
                    )
                container = t.py
                try:
                    return self.const(container[int(k.py) if isinstance(container, list) else k.py])
                except (KeyError, IndexError, TypeError, ValueError):
                    return self.v("number", self.world.rational(0), err=self.world.true)
            case s.Call():
                return self.call(node)
            case s.Unary(operand=operand):
                val = self.expr(operand)
                return self.v("number", -val.term, err=any_of(val.err, val.null))
            case s.Not(operand=operand):
                val = self.expr(operand)
                return self.v("bool", z3.Not(self.truth(val)), err=val.err)
            case s.Binary(op=op, left=left, right=right):
                return self._arith(op, self.expr(left), self.expr(right))
            case s.Compare():
                return self.compare(node)
            case s.BoolOp(op=op, values=values):
                return self._boolop(op, [self.expr(x) for x in values])
            case s.Cond(body=body, test=test, orelse=orelse):
                return self._cond(node, self.expr(test), self.expr(body), self.expr(orelse))
        raise Unknown(f"`{s.unparse(node)}` has no solver model")  # pragma: no cover

    def _boolop(self, op: str, vals: list[Val]) -> Val:
        truths = [self.truth(v) for v in vals]
        errs, before = [self.world.false], self.world.true
        for v, t in zip(vals, truths, strict=True):
            errs.append(all_of(before, v.err))  # evaluated only while the result is open
            before = all_of(before, t if op == "and" else z3.Not(t))
        term = z3.And(*truths) if op == "and" else z3.Or(*truths)
        return self.v("bool", term, err=any_of(*errs))

    def _cond(self, node: s.Expr, t: Val, b: Val, o: Val) -> Val:
        c = self.truth(t)
        if b.kind != o.kind or b.kind not in ("number", "bool", "string"):
            raise Unknown(f"`{s.unparse(node)}` mixes kinds of values")
        err = any_of(t.err, all_of(c, b.err), all_of(z3.Not(c), o.err))
        return self.v(b.kind, z3.If(c, b.term, o.term), z3.If(c, b.null, o.null), err)

    def truth(self, v: Val) -> Any:
        if v.kind != "bool":
            raise Unknown("a condition that is not a bool")
        return all_of(z3.Not(v.null), v.term)

    def _arith(self, op: str, a: Val, b: Val) -> Val:
        if a.kind != "number" or b.kind != "number":
            raise Unknown("arithmetic on a value that is not a number")
        err = any_of(a.err, b.err, a.null, b.null)
        # of constants, the engine's value too (folds a function without solver semantics)
        py = fold(op, a.py, b.py)
        if op == "+":
            return self.v("number", a.term + b.term, err=err, py=py)
        if op == "-":
            return self.v("number", a.term - b.term, err=err, py=py)
        if op == "*":
            return self.v("number", mul(a.term, b.term), err=err, py=py)
        zero = b.term == 0
        return self.v("number", a.term / b.term, err=any_of(err, all_of(z3.Not(err), zero)), py=py)

    def compare(self, node: s.Compare) -> Val:
        left = self.expr(node.first)
        first_err = left.err
        results, errs, before = [self.world.true], [], self.world.true
        for op, right_node in zip(node.ops, node.rest, strict=True):
            right = self.expr(right_node)
            holds, err = self._compare(op, left, right, node)
            errs.append(all_of(before, any_of(right.err, err)))
            results.append(holds)
            before = all_of(before, holds)
            left = right
        return self.v("bool", all_of(*results), err=any_of(first_err, *errs))

    def _compare(self, op: str, a: Val, b: Val, node: s.Expr) -> tuple[Any, Any]:
        if op in ("in", "not in") and b.kind == "cohort_symbols":
            found = self._in_cohort(a)
            return (found if op == "in" else z3.Not(found)), self.world.false
        if op in ("in", "not in"):
            if b.kind != "list":
                raise Unknown(f"`{s.unparse(node)}`: `in` over a string or a run-time list")
            found = any_of(self.world.false, *(self._equal(a, item) for item in b.term))
            return (found if op == "in" else z3.Not(found)), self.world.false
        if op in ("==", "!="):
            eq = self._equal(a, b)
            return (eq if op == "==" else z3.Not(eq)), self.world.false
        if a.kind != "number" or b.kind != "number":
            raise Unknown(f"`{s.unparse(node)}` orders values that are not numbers")
        x, y = a.term, b.term
        holds = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        return holds, any_of(a.null, b.null)

    def _in_cohort(self, a: Val) -> Any:
        """``a in cohort.symbols``: the declared cohort's symbols, else the intent's symbol."""
        w, cohort = self.world, self.cohort()
        symbol = self.intent("symbol")
        declared = {n: syms for n, syms in self.data.cohort_symbols.items() if syms}
        found: Any = self._equal(a, symbol)
        for name, syms in sorted(declared.items()):
            listed = any_of(w.false, *(self._equal(a, self.const(x)) for x in syms))
            found = z3.If(cohort == w.code(name), listed, found)
        return found

    def _equal(self, a: Val, b: Val) -> Any:
        if a.kind != b.kind or a.kind not in ("number", "bool", "string"):
            if {a.kind, b.kind} <= {"number", "bool", "string"}:
                return self.world.false  # values of different kinds are never equal
            raise Unknown("equality of values that are not numbers, bools or strings")
        both = all_of(z3.Not(a.null), z3.Not(b.null))
        return z3.Or(all_of(a.null, b.null), z3.And(both, a.term == b.term))

    def call(self, node: s.Call) -> Val:
        fn = FUNCTIONS[node.func]
        vals = [self.expr(a) for a in node.args]
        if fn.solver is None:
            if vals and all(v.py is not None for v in vals) and not fn.needs:
                # of constants only (`len(params.venues)`): the implementation itself, exactly
                # as the engine computes it, with its own check
                try:
                    fn.guard([v.py for v in vals], node)
                    return self.const(fn.impl(*(v.py for v in vals)))
                except Exception:
                    return self.v("number", self.world.rational(0), err=self.world.true)
            raise Unknown(f"`{node.func}` has no solver semantics")
        err = any_of(self.world.false, *(v.err for v in vals))
        if fn.numeric_args:
            args: list[Any] = []
            for v in vals:
                if v.kind == "list":
                    if not v.term:
                        raise Unknown(f"`{s.unparse(node)}` of an empty list")
                    args.append(tuple(i.term for i in v.term))
                    err = any_of(err, *(i.null for i in v.term))
                else:
                    args.append(v.term)
                    err = any_of(err, v.null)
            return self.v("number", fn.solver(self, args), err=err)
        if node.func != "has":
            err = any_of(err, vals[0].null)
        term = fn.solver(self, list(vals))
        return self.v("bool" if z3.is_bool(term) else "number", term, err=err)
