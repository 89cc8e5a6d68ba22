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
from typing import Any, assert_never

from ..document.checker import CheckedPolicy
from ..document.model import KEY_SEPARATOR
from ..document.names import QUOTE, Ref, Source
from ..lang import syntax as s
from ..lang.functions import FUNCTIONS
from .outcome import Outcome
from .runtime import (
    LOCK_PREFIX,
    MODE_FROM_OVERRIDE,
    MODE_FROM_TIERS,
    ZERO_BUCKET,
    RuntimeData,
    locked,
    position_value,
    quantize_down,
)

Chain = Callable[[Any, Any], Outcome]
EnvelopeFn = Callable[[Any], tuple[int, bool, dict[str, Any]]]

PREFETCH = {
    "SC": "SC = _STRATS.get(intent.strategy)",
    "SL": "SL = snap.strategies.get(intent.strategy, _ZERO) if intent.strategy in _STRATS else None",
    "YC": "YC = _SYMS.get(intent.symbol)",
    "YL": "YL = snap.symbols.get(intent.symbol, _ZERO)",
    "cohort_name": "cohort_name = _COHORT_OF.get(intent.symbol) or intent.correlation_bucket or intent.symbol",
    "CC": "CC = _COHORTS.get(cohort_name)",
    "CL": "CL = snap.cohorts.get(cohort_name, _ZERO)",
}
_NEEDS = {"CC": ("cohort_name",), "CL": ("cohort_name",)}


class Emitter:
    def __init__(self, checked: CheckedPolicy, data: RuntimeData) -> None:
        self.checked = checked
        self.data = data
        self.consts: dict[str, Any] = {}
        self.used: set[str] = set()
        self.hoisted: set[str] = set()  # portfolio fields read into locals once (chain only)
        self.hoisted_mode: set[str] = set()  # mode values likewise
        self.scope_lines: dict[str, dict[str, str]] = {}  # scope -> its prefetch lines

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

    def use_scope(self, scope: str, part: str) -> str:
        """The local holding scope ``scope``'s key value (``K``), constants (``C``) or live
        bucket (``L``); a null key leaves the bucket None, so reading it raises."""
        fields = self.data.scope_fields[scope]
        lines = self.scope_lines.setdefault(scope, {})
        if len(fields) == 1:
            lines["K"] = f"K_{scope} = intent.{fields[0]}"
        else:  # a composite key: its parts joined, None when any part is null (runtime.scope_key)
            parts = [f"intent.{f}" for f in fields]
            joined = f" + {KEY_SEPARATOR!r} + ".join(parts)
            present = " and ".join(f"{p} is not None" for p in parts)
            lines["K"] = f"K_{scope} = ({joined}) if {present} else None"
        if part == "C":
            lines["C"] = f"C_{scope} = _SCFG[{scope!r}].get(K_{scope})"
        if part == "L":
            lines["L"] = (
                f"L_{scope} = snap.scopes.get({scope!r}, _EMPTY).get(K_{scope}, _ZERO)"
                f" if K_{scope} is not None else None"
            )
        return f"{part}_{scope}"

    def bucket_of(self, namespace: str) -> str:
        """What holds the live bucket of ``namespace`` for the intent (`snap` itself for the
        portfolio)."""
        if namespace == "portfolio":
            return "snap"
        local = {"strategy": "SL", "symbol": "YL", "cohort": "CL"}.get(namespace)
        return self.use(local) if local else self.use_scope(namespace, "L")

    def prefetch(self) -> list[str]:
        """The lines that read, once, what the expressions use (bucket, configuration)."""
        lines = [line for key, line in PREFETCH.items() if key in self.used]
        for scope in sorted(self.scope_lines):
            parts = self.scope_lines[scope]
            lines += [parts[p] for p in "KCL" if p in parts]
        return lines

    def name(self, node: s.Name) -> str:
        ref = self.checked.scope.resolve(node.path)
        assert isinstance(ref, Ref)
        key = ref.key
        assert key.isidentifier()
        match ref.source:  # every Source, or mypy says which one is missing
            case Source.INTENT:
                return f"intent.{key}"
            case Source.INTENT_RISK:
                return "amount"
            case Source.INTENT_TIME:
                return "intent.timestamp"
            case Source.INTENT_COHORT | Source.COHORT_NAME:
                return self.use("cohort_name")
            case Source.PORTFOLIO:
                return f"P_{key}" if key in self.hoisted else f"snap.{key}"
            case Source.MODE:
                if key == "source":
                    return f"({MODE_FROM_OVERRIDE!r} if ov else {MODE_FROM_TIERS!r})"
                return f"M_{key}" if key in self.hoisted_mode else f"M[{key!r}]"
            case Source.PARAM:
                value = self.data.params[key]
                for part in ref.rest:
                    value = value[part]
                return self.const(value)
            case Source.STRATEGY_NAME:
                return "intent.strategy"
            case Source.SYMBOL_NAME:
                return "intent.symbol"
            case Source.COHORT_SYMBOLS:
                return f"(_CSYM.get({self.use('cohort_name')}) or (intent.symbol,))"
            case Source.LATCH:
                return f"snap.latches.get({key!r}, False)"
            case Source.WINDOW:
                return f"{self.bucket_of(ref.scope)}.windows.get({key!r}, 0)"
            case Source.POSITION:  # a missing one raises: the interpreter names the cause
                return f"_pos(snap, intent, {key!r})"
            case Source.BALANCE:  # a currency's (`quote`: the intent's own) balance, or null
                currency = "intent.quote_currency" if ref.scope == QUOTE else repr(ref.scope)
                return f"snap.balance({currency}, {key!r})"
            case Source.LOCK:
                end = f"{self.bucket_of(ref.scope)}.windows.get({LOCK_PREFIX + key!r}, 0)"
                return f"_locked({end}, intent.timestamp)"
            case Source.SCOPE_NAME:
                return f"_nn({self.use_scope(ref.scope, 'K')})"
            case Source.SCOPE_CFG:
                return f"{self.use_scope(ref.scope, 'C')}[{key!r}]"
            case Source.SCOPE_LIVE:
                return f"{self.use_scope(ref.scope, 'L')}.{key}"
            case Source.STRATEGY_CFG:
                return f"{self.use('SC')}[{key!r}]"
            case Source.SYMBOL_CFG:
                return f"{self.use('YC')}[{key!r}]"
            case Source.COHORT_CFG:
                return f"{self.use('CC')}[{key!r}]"
            case Source.STRATEGY_LIVE:
                return f"{self.use('SL')}.{key}"
            case Source.SYMBOL_LIVE:
                return f"{self.use('YL')}.{key}"
            case Source.COHORT_LIVE:
                return f"{self.use('CL')}.{key}"
            case unknown:
                assert_never(unknown)

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
                fn = FUNCTIONS[func]
                arg = self.operand if fn.numeric_args else self.expr
                context = [f"_X_{k}" for k in fn.needs]  # what the function needs of the policy
                return f"_F_{func}(" + ", ".join([*(arg(a) for a in args), *context]) + ")"
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


def _nn(value: Any) -> Any:
    if value is None:
        raise TypeError("null")  # the interpreter names the cause
    return value


def _index(container: Any, key: Any) -> Any:
    return container[int(key) if isinstance(container, list | tuple) else key]


def _add(items: tuple[Any, ...] | None, item: Any) -> tuple[Any, ...]:
    return (*(items or ()), item)


class _NaNLimit(Exception):
    """Raised by generated code so that the interpreter reports a NaN limit."""


def namespace(em: Emitter, data: RuntimeData) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "__builtins__": {},
        "_STRATS": data.strategies,
        "_SYMS": data.symbols,
        "_COHORTS": data.cohorts,
        "_COHORT_OF": data.cohort_of,
        "_CSYM": {k: tuple(v) for k, v in data.cohort_symbols.items()},
        "_ZERO": ZERO_BUCKET,
        "_EMPTY": {},
        "_SCFG": data.scopes,
        "_nn": _nn,
        "_MODES": tuple(m.values for m in data.modes),
        "_SEV": data.severity,
        "_MIN": data.min_risk_abs,
        "_qdown": quantize_down,
        "_locked": locked,
        "_pos": position_value,
        "_index": _index,
        "_num": _num,
        "_add": _add,
        "_NaN": _NaNLimit,
        "_Exception": Exception,  # builtins are empty: shadow rules catch through this name
        **{f"_F_{k}": f.impl for k, f in FUNCTIONS.items()},
        **{f"_X_{k}": v for k, v in data.context.items()},
    }
    ns.update(em.consts)
    return ns


def _mode_lines(em: Emitter, checked: CheckedPolicy) -> list[str]:
    lines = ["m = 0"]
    first = True
    for state in reversed(em.data.modes[1:]):
        when = checked.mode_whens.get(state.name)
        if when is None:
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


def _rule_lines(em: Emitter, i: int, checked: CheckedPolicy) -> list[str]:
    rule = checked.rules[i]
    spec = rule.spec
    if spec.enforce_from is None:
        return [f"# rule {i}", *_rule_body(em, i, checked, spec.enforcement == "warn")]
    # Staged rollout: shadow before `enforce_from`, enforced from it, on the intent's time.
    at = em.const(spec.enforce_from)
    enforced = _rule_body(em, i, checked, False)
    shadow = _rule_body(em, i, checked, True)
    return [
        f"# rule {i} (enforced from {spec.enforce_from.isoformat()})",
        f"if intent.timestamp < {at}:",
        *("    " + b for b in shadow),
        "else:",
        *("    " + b for b in enforced),
    ]


def _rule_body(em: Emitter, i: int, checked: CheckedPolicy, shadow: bool) -> list[str]:
    rule = checked.rules[i]
    spec = rule.spec
    reject = f"return (1, {i}, 0.0, clips, warns, m, ov, None)"
    body: list[str] = []
    expr = em.expr(rule.expr)
    if spec.kind == "allow":
        body = [
            f"if {expr}:",
            f"    return (0, {i}, amount, clips, warns, m, ov, None)",
        ]
    elif spec.kind == "require":
        body = [f"if not {expr}:", f"    warns = _add(warns, {i})" if shadow else f"    {reject}"]
    else:
        # Compared on the 1e-6 grid: a request equal to the headroom up to float noise
        # (5400.06 against 5400.059999999999) is within it, not clipped to itself.
        body = [
            f"lim = {expr}",
            "if not (amount <= lim):",
            "    if lim != lim:",
            "        raise _NaN",
            "    q = _qdown(lim)",
            "    if not (amount <= q):",
        ]
        if shadow:
            body.append(f"        warns = _add(warns, {i})")
        elif spec.on_exceed == "clip":
            body += [
                "        if q > 0 and q >= _MIN:",
                f"            clips = _add(clips, ({i}, amount, q))",
                "            amount = q",
                "        else:",
                f"            {reject}",
            ]
        else:
            body.append(f"        {reject}")
    if rule.when is not None:
        body = [f"if {em.expr(rule.when)}:", *("    " + b for b in body)]
    # A shadow rule never blocks, not even by failing; but one that lets a missing value
    # pass (`when_missing: approve`) must not warn for it either: its failures go to the
    # interpreter, which tells a missing value from any other (rare: only such intents).
    if shadow and spec.when_missing != "approve":
        body = [
            "try:",
            *("    " + b for b in body),
            "except _Exception:",
            f"    warns = _add(warns, {i})",
        ]
    return body


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
    counts: dict[tuple[Source, str], int] = {}
    for root in roots:
        for node in s.walk(root):
            if isinstance(node, s.Name):
                ref = checked.scope.resolve(node.path)
                if (
                    isinstance(ref, Ref)
                    and ref.source in (Source.PORTFOLIO, Source.MODE)
                    and ref.key != "source"
                ):
                    k = (ref.source, ref.key)
                    counts[k] = counts.get(k, 0) + 1
    portfolio = {k for (src, k), n in counts.items() if n > 1 and src is Source.PORTFOLIO}
    mode = {k for (src, k), n in counts.items() if n > 1 and src is Source.MODE}
    return portfolio, mode


def generate_chain_source(checked: CheckedPolicy, data: RuntimeData) -> tuple[str, dict[str, Any]]:
    em = Emitter(checked, data)
    em.hoisted, em.hoisted_mode = _repeated_reads(checked)
    hoisted = [f"P_{k} = snap.{k}" for k in sorted(em.hoisted)]
    mode = _mode_lines(em, checked) + [f"M_{k} = M[{k!r}]" for k in sorted(em.hoisted_mode)]
    rules: list[str] = []
    for i in range(len(checked.rules)):
        rules += _rule_lines(em, i, checked)
    prefetch = em.prefetch()
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
    return src, namespace(em, data)


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


LatchFn = Callable[[Any], list[bool | None]]


def compile_latches(checked: CheckedPolicy, data: RuntimeData) -> tuple[LatchFn, str]:
    """A function snap -> whether each latch's `when` holds (in declaration order), None
    where it fails (the interpreter then names the cause; a failing latch sets, fail closed)."""
    em = Emitter(checked, data)
    lines = ["out = []"]
    for name in checked.spec.latches:
        node = checked.latch_whens.get(name)
        lines += [
            "try:",
            f"    out.append(True if {em.expr(node) if node is not None else 'False'} else False)",
            "except _Exception:",
            "    out.append(None)",
        ]
    lines.append("return out")
    fn, src = _function(em, data, "_latches", lines, f"<latches {checked.spec.name}>")
    latches: LatchFn = fn
    return latches, src


def _function(
    em: Emitter, data: RuntimeData, name: str, lines: list[str], label: str
) -> tuple[Any, str]:
    """``def name(snap):`` with ``lines`` as its body, compiled in the policy's namespace."""
    src = f"def {name}(snap):\n" + "".join(f"    {line}\n" for line in lines)
    ns = namespace(em, data)
    exec(compile(src, label, "exec"), ns)
    return ns[name], src


def compile_envelope(checked: CheckedPolicy, data: RuntimeData) -> tuple[EnvelopeFn, str]:
    """A function snap -> (mode index, overridden, raw envelope values)."""
    em = Emitter(checked, data)
    lines = [*_mode_lines(em, checked), "out = {}"]
    for key in ENVELOPE_KEYS:
        node = checked.envelope.get(key)
        if node is not None:
            lines.append(f"out[{key!r}] = {em.expr(node)}")
    lines.append("return (m, ov, out)")
    fn, src = _function(em, data, "_envelope", lines, f"<envelope {checked.spec.name}>")
    envelope: EnvelopeFn = fn
    return envelope, src
