"""Generated explainers: a rule's trace and a message's placeholder values, straight-line.

When a rule decides, the verdict explains it with the value of every name and
sub-expression the rule evaluated (``Verdict.context``). The interpreter can do
that (``evaluate(node, env, trace)``) but pays per node; a tracer is the same
walk generated as straight-line statements, compiled once per rule on first use.
It records exactly what the interpreter records, in the same order (post-order,
short-circuits respected, first value of a repeated key kept), with the same
values (lists stay lists, configuration objects are the policy's own). Whenever
it raises, the caller falls back to the interpreter, which names the cause.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..document.checker import CheckedPolicy
from ..document.names import Ref, Source
from ..lang import syntax as s
from ..lang.functions import FUNCTIONS, number
from .codegen import Emitter, namespace
from .runtime import RuntimeData

Tracer = Callable[[dict[str, Any], Any, Any, float, int, bool], Any]
MessageFn = Callable[[Any, Any, float, int, bool], tuple[Any, ...]]


def _xindex(container: Any, key: Any) -> Any:
    return container[int(key) if isinstance(container, list) else key]


class _TraceEmitter(Emitter):
    def __init__(self, checked: CheckedPolicy, data: RuntimeData, record: bool = True) -> None:
        super().__init__(checked, data)
        self.record_values = record
        self.lines: list[str] = []
        self.n = 0
        self.seen: set[str] = set()
        self.numeric: set[str] = set()  # emitted numeric literals

    def const(self, value: Any) -> str:
        # exact objects: the interpreter hands out the policy's own lists and maps
        if isinstance(value, bool | int | str) or (
            isinstance(value, float) and math.isfinite(value)
        ):
            return repr(value)
        name = f"_K{len(self.consts)}"
        self.consts[name] = value
        return name

    def name(self, node: s.Name) -> str:
        ref = self.checked.scope.resolve(node.path)
        if isinstance(ref, Ref) and ref.source is Source.COHORT_SYMBOLS:
            return f"_CSYML.get({self.use('cohort_name')}, [intent.symbol])"
        return super().name(node)

    def line(self, text: str, ind: int) -> None:
        self.lines.append("    " * ind + text)

    def tmp(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def number(self, var: str, node: s.Expr, ind: int) -> None:
        """The interpreter refuses a non-number operand (Python would add a bool): so do we."""
        if isinstance(node, s.Num | s.Binary | s.Unary | s.Call) or var in self.numeric:
            return  # always a number (calls check their arguments and return numbers)
        self.line(
            f"if {var}.__class__ is not _float and {var}.__class__ is not _int: "
            f"_number({var}, {self.const(node)})",
            ind,
        )

    def record(self, node: s.Expr, var: str, ind: int) -> None:
        if not self.record_values:
            return
        key = s.unparse(node)
        if key in self.seen:  # a key may be recorded already: keep the first value
            self.line(f"sd({key!r}, {var})", ind)
        else:
            self.line(f"t[{key!r}] = {var}", ind)
            self.seen.add(key)

    def emit(self, node: s.Expr, ind: int) -> str:
        """Statements computing ``node`` (at indent ``ind``); returns what holds its value."""
        v: str
        match node:
            case s.Num(value=x):
                return self.const(x)
            case s.Str(value=x):
                return repr(x)
            case s.Bool(value=x):
                return "True" if x else "False"
            case s.ListLit(items=items):
                parts = [self.emit(i, ind) for i in items]
                v = self.tmp()
                self.line(f"{v} = [{', '.join(parts)}]", ind)
            case s.Name():
                ref = self.checked.scope.resolve(node.path)
                if isinstance(ref, Ref) and ref.source is Source.PARAM and not ref.rest:
                    value = self.data.params[ref.key]
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        v = self.const(value)
                        if v[0] not in "_-":  # a literal, not a constant's name
                            self.numeric.add(v)
                            self.record(node, v, ind)
                            return v
                v = self.tmp()
                self.line(f"{v} = {self.name(node)}", ind)
            case s.Index(target=target, key=key):
                c = self.emit(target, ind)
                k = self.emit(key, ind)
                v = self.tmp()
                self.line(f"{v} = _xindex({c}, {k})", ind)
            case s.Call(func=func, args=args):
                assert func in FUNCTIONS
                vals = [self.emit(a, ind) for a in args]
                v = self.tmp()
                self.line(
                    f"{v} = _FN[{func!r}].call([{', '.join(vals)}], {self.const(node)}, _CTX)", ind
                )
            case s.Unary(operand=o):
                a = self.emit(o, ind)
                self.number(a, o, ind)
                v = self.tmp()
                self.line(f"{v} = -{a}", ind)
            case s.Not(operand=o):
                a = self.emit(o, ind)
                v = self.tmp()
                self.line(f"{v} = not {a}", ind)
            case s.Binary(op=op, left=left, right=right):
                assert op in s.ARITH_OPS
                a = self.emit(left, ind)
                b = self.emit(right, ind)
                self.number(a, left, ind)
                self.number(b, right, ind)
                if op == "/":
                    self.line(f"if {b} == 0: raise _Exception", ind)
                v = self.tmp()
                self.line(f"{v} = {a} {op} {b}", ind)
            case s.Compare(first=first, ops=ops, rest=rest):
                v = self.tmp()
                self.line(f"{v} = True", ind)
                left_var = self.emit(first, ind)
                for j, (op, right_node) in enumerate(zip(ops, rest, strict=True)):
                    assert op in s.COMPARE_OPS
                    inner = ind
                    if j:
                        self.line(f"if {v}:", ind)
                        inner = ind + 1
                    right_var = self.emit(right_node, inner)
                    self.line(f"if not ({left_var} {op} {right_var}): {v} = False", inner)
                    left_var = right_var
            case s.BoolOp(op=op, values=values):
                assert op in ("and", "or")
                v = self.tmp()
                self.line(f"{v} = {op == 'and'}", ind)
                for j, operand in enumerate(values):
                    inner = ind
                    if j:
                        self.line(f"if {v}:" if op == "and" else f"if not {v}:", ind)
                        inner = ind + 1
                    a = self.emit(operand, inner)
                    if op == "and":
                        self.line(f"if not {a}: {v} = False", inner)
                    else:
                        self.line(f"if {a}: {v} = True", inner)
            case s.Cond(body=body, test=test, orelse=orelse):
                t = self.emit(test, ind)
                v = self.tmp()
                self.line(f"if {t}:", ind)
                self.line(f"{v} = {self.emit(body, ind + 1)}", ind + 1)
                self.line("else:", ind)
                self.line(f"{v} = {self.emit(orelse, ind + 1)}", ind + 1)
            case _:  # pragma: no cover
                raise AssertionError(node)
        self.record(node, v, ind)
        return v


def _explainnamespace(em: _TraceEmitter, data: RuntimeData) -> dict[str, Any]:
    ns = namespace(em, data)
    ns.update(_CSYML=data.cohort_symbols, _xindex=_xindex, _FN=FUNCTIONS, _number=number)
    ns.update(_CTX=data.context)
    ns.update(_float=float, _int=int)
    return ns


def _finish(em: _TraceEmitter, head: str, ret: str, label: str) -> Any:
    body = ["M = _MODES[m]", *em.prefetch(), *em.lines, f"return {ret}"]
    src = head + "".join(f"    {line}\n" for line in body)
    ns = _explainnamespace(em, em.data)
    try:
        exec(compile(src, label, "exec"), ns)
    except (SyntaxError, RecursionError, MemoryError):  # pragma: no cover - huge nesting
        return None
    return ns["_f"]


def compile_tracer(checked: CheckedPolicy, data: RuntimeData, index: int) -> Tracer | None:
    """``f(trace, intent, snap, amount, mode index, overridden) -> value of the rule's test``.

    Fills ``trace`` as ``interpreter.evaluate(rule.expr, env, trace)`` followed by
    ``evaluate(rule.when, env, trace)`` would; None if the rule cannot be generated.
    """
    rule = checked.rules[index]
    em = _TraceEmitter(checked, data)
    value = em.emit(rule.expr, 0)
    if rule.when is not None:
        em.emit(rule.when, 0)
    head = "def _f(t, intent, snap, amount, m, ov):\n    sd = t.setdefault\n"
    fn: Tracer | None = _finish(em, head, value, f"<trace {checked.spec.name} rule {index}>")
    return fn


def compile_message(checked: CheckedPolicy, data: RuntimeData, index: int) -> MessageFn | None:
    """``f(intent, snap, amount, mode index, overridden) -> values of the message's placeholders``."""
    parts = [p for p in checked.rules[index].message if not isinstance(p, str)]
    em = _TraceEmitter(checked, data, record=False)
    values = [em.emit(p, 0) for p in parts]
    head = "def _f(intent, snap, amount, m, ov):\n"
    ret = "(" + "".join(f"{v}, " for v in values) + ")"
    fn: MessageFn | None = _finish(em, head, ret, f"<message {checked.spec.name} rule {index}>")
    return fn
