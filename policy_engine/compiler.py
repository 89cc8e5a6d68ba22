"""Checked policy -> one straight-line Python function.

The whole rule chain becomes a single generated function: locals, inline
arithmetic, short-circuit conditions, early returns, no per-node dispatch.
It is safe by construction: every name comes from the checker's symbol
table (attribute names from fixed tables, configuration keys and literals
emitted with ``repr``), and no user text is spliced into the source.

The generated code is a fast path. Whenever it raises (an unknown strategy,
a missing key, a division by zero, a null, a NaN limit), the evaluator
re-runs the reference interpreter, which names the precise cause.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .contracts import MODE_SEVERITY
from .document.checker import CheckedPolicy
from .document.names import Ref
from .interpreter import Outcome
from .lang import syntax as s
from .lang.functions import FUNCTIONS, number
from .runtime import ZERO_BUCKET, RuntimeData, quantize_down

Chain = Callable[[Any, Any], Outcome]
EnvelopeFn = Callable[[Any], tuple[int, bool, dict[str, Any]]]

_PREFETCH = {
    "SC": "SC = _STRATS.get(intent.strategy)",
    "SL": "SL = snap.strategies.get(intent.strategy, _ZERO) if intent.strategy in _STRATS else None",
    "YC": "YC = _SYMS.get(intent.symbol)",
    "YL": "YL = snap.symbols.get(intent.symbol, _ZERO)",
    "cohort_name": "cohort_name = _COHORT_OF.get(intent.symbol) or intent.correlation_bucket or intent.symbol",
    "CC": "CC = _COHORTS.get(cohort_name)",
    "CL": "CL = snap.cohorts.get(cohort_name, _ZERO)",
}
_NEEDS = {"CC": ("cohort_name",), "CL": ("cohort_name",)}


class _Emitter:
    def __init__(self, checked: CheckedPolicy, data: RuntimeData) -> None:
        self.checked = checked
        self.data = data
        self.consts: dict[str, Any] = {}
        self.used: set[str] = set()
        self.hoisted: set[str] = set()  # portfolio fields read into locals once (chain only)
        self.hoisted_mode: set[str] = set()  # mode values likewise

    def const(self, value: Any) -> str:
        if isinstance(value, bool | int | str) or (
            isinstance(value, float) and math.isfinite(value)
        ):
            return repr(value)
        name = f"_K{len(self.consts)}"
        self.consts[name] = tuple(value) if isinstance(value, list) else value
        return name

    def use(self, local: str) -> str:
        for dep in _NEEDS.get(local, ()):
            self.used.add(dep)
        self.used.add(local)
        return local

    def name(self, node: s.Name) -> str:
        ref = self.checked.scope.resolve(node.path)
        assert isinstance(ref, Ref)
        src, key = ref.source, ref.key
        assert key.isidentifier()
        if src == "intent":
            return f"intent.{key}"
        if src == "intent_risk":
            return "amount"
        if src in ("intent_cohort", "cohort_name"):
            return self.use("cohort_name")
        if src == "portfolio":
            return f"P_{key}" if key in self.hoisted else f"snap.{key}"
        if src == "mode":
            if key == "source":
                return "('override' if ov else 'drawdown')"
            return f"M_{key}" if key in self.hoisted_mode else f"M[{key!r}]"
        if src == "param":
            value = self.data.params[key]
            for part in ref.rest:
                value = value[part]
            return self.const(value)
        if src == "strategy_name":
            return "intent.strategy"
        if src == "symbol_name":
            return "intent.symbol"
        if src == "cohort_symbols":
            return f"(_CSYM.get({self.use('cohort_name')}) or (intent.symbol,))"
        local = {
            "strategy_cfg": "SC",
            "strategy_live": "SL",
            "symbol_cfg": "YC",
            "symbol_live": "YL",
            "cohort_cfg": "CC",
            "cohort_live": "CL",
        }[src]
        self.use(local)
        return f"{local}.{key}" if src.endswith("_live") else f"{local}[{key!r}]"

    def expr(self, node: s.Expr) -> str:
        match node:
            case s.Num(value=v):
                return self.const(v)  # `inf` has no literal: a non-finite number is a constant
            case s.Str(value=v):
                return repr(v)
            case s.Bool(value=v):
                return "True" if v else "False"
            case s.ListLit(items=items):
                return "(" + "".join(self.expr(i) + ", " for i in items) + ")"
            case s.Name():
                return self.name(node)
            case s.Index(target=target, key=key):
                return f"_index({self.expr(target)}, {self.expr(key)})"
            case s.Call(func=func, args=args):
                assert func in FUNCTIONS
                arg = self.expr if func == "len" else self.operand
                return f"_F_{func}(" + ", ".join(arg(a) for a in args) + ")"
            case s.Unary(operand=o):
                return f"(-{self.operand(o)})"
            case s.Not(operand=o):
                return f"(not {self.expr(o)})"
            case s.Binary(op=op, left=left, right=right):
                assert op in s.ARITH_OPS
                return f"({self.operand(left)} {op} {self.operand(right)})"
            case s.Compare(first=first, ops=ops, rest=rest):
                parts = [self.expr(first)]
                for op, r in zip(ops, rest, strict=True):
                    assert op in s.COMPARE_OPS
                    parts.append(f"{op} {self.expr(r)}")
                return "(" + " ".join(parts) + ")"
            case s.BoolOp(op=op, values=values):
                assert op in ("and", "or")
                return "(" + f" {op} ".join(self.expr(v) for v in values) + ")"
            case s.Cond(body=body, test=test, orelse=orelse):
                return f"({self.expr(body)} if {self.expr(test)} else {self.expr(orelse)})"
        raise AssertionError(node)  # pragma: no cover

    def operand(self, node: s.Expr) -> str:
        """An operand of arithmetic. Only an index or a conditional can hold an untyped
        value (a bool or string from a mixed map or list): check those like the interpreter."""
        if isinstance(node, s.Index | s.Cond):
            return f"_num({self.expr(node)})"
        return self.expr(node)


def _num(value: Any) -> Any:
    if value.__class__ is not float and value.__class__ is not int:
        raise TypeError("not a number")  # the interpreter names the cause
    return value


def _index(container: Any, key: Any) -> Any:
    return container[int(key) if isinstance(container, list | tuple) else key]


def _add(items: tuple[Any, ...] | None, item: Any) -> tuple[Any, ...]:
    return (*(items or ()), item)


class _NaNLimit(Exception):
    """Raised by generated code so that the interpreter reports a NaN limit."""


def _namespace(em: _Emitter, data: RuntimeData) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "__builtins__": {},
        "_STRATS": data.strategies,
        "_SYMS": data.symbols,
        "_COHORTS": data.cohorts,
        "_COHORT_OF": data.cohort_of,
        "_CSYM": {k: tuple(v) for k, v in data.cohort_symbols.items()},
        "_ZERO": ZERO_BUCKET,
        "_MODES": tuple(m.values for m in data.modes),
        "_SEV": dict(MODE_SEVERITY),
        "_MIN": data.min_risk_abs,
        "_qdown": quantize_down,
        "_index": _index,
        "_num": _num,
        "_add": _add,
        "_NaN": _NaNLimit,
        "_Exception": Exception,  # builtins are empty: shadow rules catch through this name
        **{f"_F_{k}": f.impl for k, f in FUNCTIONS.items()},
    }
    ns.update(em.consts)
    return ns


def _mode_lines(em: _Emitter, checked: CheckedPolicy) -> list[str]:
    lines = ["m = 0"]
    first = True
    for state in reversed(em.data.modes[1:]):
        when = checked.mode_whens.get(state.name)
        if when is None or state.name not in checked.spec.modes:
            continue
        lines.append(f"{'if' if first else 'elif'} {em.expr(when)}:")
        lines.append(f"    m = {state.index}")
        first = False
    lines += [
        "ov = False",
        "o = snap.mode_override",
        "if o is not None and _SEV[o] > m:",
        "    m = _SEV[o]",
        "    ov = True",
        "M = _MODES[m]",
    ]
    return lines


def _rule_lines(em: _Emitter, i: int, checked: CheckedPolicy) -> list[str]:
    rule = checked.rules[i]
    spec = rule.spec
    shadow = spec.enforcement == "warn"
    reject = f"return (1, {i}, 0.0, clips, warns, m, ov, None)"
    body: list[str] = []
    expr = em.expr(rule.expr)
    if spec.kind == "allow":
        body = [f"if {expr}:", f"    return (0, {i}, amount, clips, warns, m, ov, None)"]
    elif spec.kind == "require":
        body = [f"if not {expr}:", f"    warns = _add(warns, {i})" if shadow else f"    {reject}"]
    else:
        body = [
            f"lim = {expr}",
            "if not (amount <= lim):",
            "    if lim != lim:",
            "        raise _NaN",
        ]
        if shadow:
            body.append(f"    warns = _add(warns, {i})")
        elif spec.on_exceed == "clip":
            body += [
                "    q = _qdown(lim)",
                "    if q > 0 and q >= _MIN:",
                f"        clips = _add(clips, ({i}, amount, q))",
                "        amount = q",
                "    else:",
                f"        {reject}",
            ]
        else:
            body.append(f"    {reject}")
    if rule.when is not None:
        body = [f"if {em.expr(rule.when)}:", *("    " + b for b in body)]
    if shadow:  # a shadow rule never blocks, not even by failing
        body = [
            "try:",
            *("    " + b for b in body),
            "except _Exception:",
            f"    warns = _add(warns, {i})",
        ]
    return [f"# rule {i}", *body]


def _repeated_reads(checked: CheckedPolicy) -> tuple[set[str], set[str]]:
    """Portfolio fields and mode values the chain reads more than once (hoisted into locals).

    Snapshot fields such as ``drawdown`` and ``heat`` are computed properties; reading
    each once is what a hand-written chain does. A hoisted read that raises sends the
    evaluation to the interpreter, like any fast-path exception.
    """
    roots: list[s.Expr] = [checked.mode_whens[n] for n in checked.mode_whens]
    for rule in checked.rules:
        roots.append(rule.expr)
        if rule.when is not None:
            roots.append(rule.when)
    counts: dict[tuple[str, str], int] = {}
    for root in roots:
        for node in s.walk(root):
            if isinstance(node, s.Name):
                ref = checked.scope.resolve(node.path)
                if (
                    isinstance(ref, Ref)
                    and ref.source in ("portfolio", "mode")
                    and ref.key != "source"
                ):
                    k = (ref.source, ref.key)
                    counts[k] = counts.get(k, 0) + 1
    portfolio = {k for (src, k), n in counts.items() if n > 1 and src == "portfolio"}
    mode = {k for (src, k), n in counts.items() if n > 1 and src == "mode"}
    return portfolio, mode


def generate_chain_source(checked: CheckedPolicy, data: RuntimeData) -> tuple[str, dict[str, Any]]:
    em = _Emitter(checked, data)
    em.hoisted, em.hoisted_mode = _repeated_reads(checked)
    hoisted = [f"P_{k} = snap.{k}" for k in sorted(em.hoisted)]
    mode = _mode_lines(em, checked) + [f"M_{k} = M[{k!r}]" for k in sorted(em.hoisted_mode)]
    rules: list[str] = []
    for i in range(len(checked.rules)):
        rules += _rule_lines(em, i, checked)
    prefetch = [line for key, line in _PREFETCH.items() if key in em.used]
    body = [
        "amount = intent.requested_risk_abs",
        *hoisted,
        *mode,
        "clips = None",
        "warns = None",
        *prefetch,
        *rules,
        "return (0, -1, amount, clips, warns, m, ov, None)",
    ]
    src = "def _chain(intent, snap):\n" + "".join(f"    {line}\n" for line in body)
    return src, _namespace(em, data)


def compile_chain(checked: CheckedPolicy, data: RuntimeData) -> tuple[Chain, str]:
    src, ns = generate_chain_source(checked, data)
    code = compile(src, f"<policy {checked.spec.name} v{checked.spec.version}>", "exec")
    exec(code, ns)
    chain: Chain = ns["_chain"]
    return chain, src


ENVELOPE_KEYS = (
    "max_new_risk_abs",
    "max_additional_positions",
    "symbol_max_risk_abs",
    "size_multiplier_cap",
)


def compile_envelope(checked: CheckedPolicy, data: RuntimeData) -> tuple[EnvelopeFn, str]:
    """A function snap -> (mode index, overridden, raw envelope values)."""
    em = _Emitter(checked, data)
    lines = [*_mode_lines(em, checked), "out = {}"]
    for key in ENVELOPE_KEYS:
        node = checked.envelope.get(key)
        if node is not None:
            lines.append(f"out[{key!r}] = {em.expr(node)}")
    lines.append("return (m, ov, out)")
    src = "def _envelope(snap):\n" + "".join(f"    {line}\n" for line in lines)
    ns = _namespace(em, data)
    exec(compile(src, f"<envelope {checked.spec.name}>", "exec"), ns)
    fn: EnvelopeFn = ns["_envelope"]
    return fn, src


# --- explanations: generated tracers for the failure path ---------------------------------
#
# When a rule decides, the verdict explains it with the value of every name and
# sub-expression the rule evaluated (``Verdict.context``). The interpreter can do
# that (``evaluate(node, env, trace)``) but pays per node; a tracer is the same
# walk generated as straight-line statements, compiled once per rule on first use.
# It records exactly what the interpreter records, in the same order (post-order,
# short-circuits respected, first value of a repeated key kept), with the same
# values (lists stay lists, configuration objects are the policy's own). Whenever
# it raises, the caller falls back to the interpreter, which names the cause.

Tracer = Callable[[dict[str, Any], Any, Any, float, int, bool], Any]
MessageFn = Callable[[Any, Any, float, int, bool], tuple[Any, ...]]


def _xindex(container: Any, key: Any) -> Any:
    return container[int(key) if isinstance(container, list) else key]


class _TraceEmitter(_Emitter):
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
        if isinstance(ref, Ref) and ref.source == "cohort_symbols":
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
                if isinstance(ref, Ref) and ref.source == "param" and not ref.rest:
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
                self.line(f"{v} = _FN[{func!r}].call([{', '.join(vals)}], {self.const(node)})", ind)
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


def _explain_namespace(em: _TraceEmitter, data: RuntimeData) -> dict[str, Any]:
    ns = _namespace(em, data)
    ns.update(_CSYML=data.cohort_symbols, _xindex=_xindex, _FN=FUNCTIONS, _number=number)
    ns.update(_float=float, _int=int)
    return ns


def _finish(em: _TraceEmitter, head: str, ret: str, label: str) -> Any:
    prefetch = [line for key, line in _PREFETCH.items() if key in em.used]
    body = ["M = _MODES[m]", *prefetch, *em.lines, f"return {ret}"]
    src = head + "".join(f"    {line}\n" for line in body)
    ns = _explain_namespace(em, em.data)
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
