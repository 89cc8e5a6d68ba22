"""Parse and check every expression of a policy: names, types, contexts.

All problems are collected (never stop at the first) and returned sorted;
a policy with any error never compiles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import diagnostics as d
from ..diagnostics import Diagnostic, suggest
from ..lang import syntax as s
from ..lang import valuetypes as t
from ..lang.errors import ExprSyntaxError
from ..lang.functions import FUNCTIONS
from ..lang.parser import parse_expression
from ..lang.valuetypes import Type
from .declarations import declaration_problems
from .model import ExprSource, PolicySpec, RuleSpec
from .names import (
    DECISION_FIELDS,
    ENVELOPE_CONTEXT,
    INTENT_CONTEXT,
    LATCH_CONTEXT,
    LIVE_FIELDS,
    MODE_CONTEXT,
    MODE_FIELDS,
    PROPERTY_CONTEXT,
    RESERVED_KEYS,
    Ref,
    Scope,
    Unresolved,
)
from .sourcemap import SourceMap

MessagePart = str | s.Expr

# Literals spelt the way other languages spell them: the help says how this one does.
_LITERAL_SLIPS = {
    "True": "write `true`",
    "False": "write `false`",
    "None": "the language has no null; test an optional field with `has(intent.<name>)`",
    "null": "the language has no null; test an optional field with `has(intent.<name>)`",
}


@dataclass(frozen=True)
class CheckedRule:
    spec: RuleSpec
    expr: s.Expr
    when: s.Expr | None
    message: tuple[MessagePart, ...]


@dataclass(frozen=True)
class CheckedPolicy:
    spec: PolicySpec
    scope: Scope
    rules: tuple[CheckedRule, ...]
    mode_whens: dict[str, s.Expr]
    envelope: dict[str, s.Expr]
    warnings: tuple[Diagnostic, ...] = ()
    latch_whens: dict[str, s.Expr] = field(default_factory=dict)
    properties: dict[str, s.Expr] = field(default_factory=dict)  # id -> assert (verify only)


@dataclass
class _Checker:
    spec: PolicySpec
    doc: SourceMap
    scope: Scope
    problems: list[Diagnostic] = field(default_factory=list)

    # --- parsing ---------------------------------------------------------------------
    def parse(self, src: ExprSource, base: int = 0, text: str | None = None) -> s.Expr | None:
        try:
            return parse_expression(src.text if text is None else text)
        except ExprSyntaxError as exc:
            code = d.PT202 if exc.too_complex else d.PT201
            self.report(code, exc.message, src, base + exc.offset, exc.help)
            return None

    def report(
        self, code: str, message: str, src: ExprSource, offset: int, help: str | None = None
    ) -> None:
        where = self.doc.expr_span(src.path, offset)
        self.problems.append(d.diagnostic(code, message, where, help))

    # --- typing ----------------------------------------------------------------------
    def infer(self, node: s.Expr, src: ExprSource, allowed: frozenset[str], base: int = 0) -> Type:
        def at(n: s.Expr) -> int:
            return base + n.start

        def expect(n: s.Expr, kind: str, what: str) -> Type:
            got = self.infer(n, src, allowed, base)
            if got.kind not in (kind, "any"):
                self.report(
                    d.PT302, f"{what} needs a {kind}, but `{s.unparse(n)}` is a {got}", src, at(n)
                )
            return got

        match node:
            case s.Num():
                return t.NUMBER
            case s.Str():
                return t.STRING
            case s.Bool():
                return t.BOOL
            case s.ListLit(items=items):
                return t.list_of(
                    t.unify([self.infer(i, src, allowed, base) for i in items]) if items else t.ANY
                )
            case s.Name():
                return self.name(node, src, allowed, base)
            case s.Index(target=target, key=key):
                ttype = self.infer(target, src, allowed, base)
                if ttype.kind == "list":
                    expect(key, "number", "a list index")
                    return ttype.item or t.ANY
                if ttype.kind == "map":
                    expect(key, "string", "a map key")
                    if isinstance(key, s.Str) and ttype.fields is not None:
                        inner = ttype.field(key.value)
                        if inner is None:
                            self.report(
                                d.PT301,
                                f"unknown key `{key.value}` in `{s.unparse(target)}`",
                                src,
                                at(key),
                                suggest(key.value, [k for k, _ in ttype.fields]),
                            )
                            return t.ANY
                        return inner
                    return ttype.item or t.ANY
                if ttype.kind != "any":
                    self.report(
                        d.PT302,
                        f"`{s.unparse(target)}` is a {ttype} and cannot be indexed",
                        src,
                        at(target),
                    )
                self.infer(key, src, allowed, base)
                return t.ANY
            case s.Call(func=func, args=args):
                return self.call(node, func, args, src, allowed, base)
            case s.Unary(operand=o):
                expect(o, "number", "unary `-`")
                return t.NUMBER
            case s.Not(operand=o):
                expect(o, "bool", "`not`")
                return t.BOOL
            case s.Binary(op=op, left=left, right=right):
                expect(left, "number", f"`{op}`")
                expect(right, "number", f"`{op}`")
                return t.NUMBER
            case s.Compare(first=first, ops=ops, rest=rest):
                prev_node: s.Expr = first
                prev_type = self.infer(first, src, allowed, base)
                for op, right_node in zip(ops, rest, strict=True):
                    right_type = self.infer(right_node, src, allowed, base)
                    self.compare(op, prev_node, prev_type, right_node, right_type, src, base)
                    prev_node, prev_type = right_node, right_type
                return t.BOOL
            case s.BoolOp(op=op, values=values):
                for v in values:
                    expect(v, "bool", f"`{op}`")
                return t.BOOL
            case s.Cond(body=body, test=test, orelse=orelse):
                expect(test, "bool", "the condition of `if`")
                a = self.infer(body, src, allowed, base)
                b = self.infer(orelse, src, allowed, base)
                if not a.compatible(b):
                    self.report(
                        d.PT302,
                        f"both branches of `if` must have one type, not {a} and {b}",
                        src,
                        at(node),
                    )
                    return t.ANY
                return a if a.kind != "any" else b
        raise AssertionError(node)  # pragma: no cover

    def compare(
        self, op: str, ln: s.Expr, left: Type, rn: s.Expr, right: Type, src: ExprSource, base: int
    ) -> None:
        if op in ("in", "not in"):
            if right.kind not in ("list", "map", "string", "any"):
                self.report(
                    d.PT302,
                    f"`{op}` needs a list, map or string on its right, not a {right}",
                    src,
                    base + rn.start,
                )
            elif (
                right.kind == "list" and right.item is not None and not left.compatible(right.item)
            ):
                self.report(
                    d.PT302,
                    f"`{s.unparse(ln)}` is a {left} but `{s.unparse(rn)}` holds {right.item.kind}s",
                    src,
                    base + ln.start,
                )
            return
        if op in ("<", "<=", ">", ">="):
            for node, kind in ((ln, left), (rn, right)):
                if kind.kind not in ("number", "string", "time", "any"):
                    self.report(
                        d.PT302,
                        f"`{op}` needs numbers, but `{s.unparse(node)}` is a {kind}",
                        src,
                        base + node.start,
                    )
                    return
        if not left.compatible(right):
            self.report(
                d.PT302,
                f"cannot compare `{s.unparse(ln)}` ({left}) with `{s.unparse(rn)}` ({right})",
                src,
                base + ln.start,
            )
        elif left.kind == "string" and isinstance(rn, s.Str) and isinstance(ln, s.Name):
            self.known_value(ln, rn, src, base)
        elif right.kind == "string" and isinstance(ln, s.Str) and isinstance(rn, s.Name):
            self.known_value(rn, ln, src, base)

    def known_value(self, name: s.Name, lit: s.Str, src: ExprSource, base: int) -> None:
        """`intent.side == "lnog"` can never hold; say so."""
        if name.path == ("intent", "side") and lit.value not in ("long", "short", "flat"):
            hint = suggest(lit.value, ["long", "short", "flat"])
            self.report(
                d.PT302, f"`intent.side` is never `{lit.value}`", src, base + lit.start, hint
            )

    def name(self, node: s.Name, src: ExprSource, allowed: frozenset[str], base: int) -> Type:
        if node.path[0] == "decision" and "decision" in allowed:
            kind = DECISION_FIELDS.get(node.path[1]) if len(node.path) == 2 else None
            if kind is None:
                hint = suggest(node.dotted, [f"decision.{k}" for k in DECISION_FIELDS])
                self.report(d.PT301, f"unknown name `{node.dotted}`", src, base + node.start, hint)
                return t.ANY
            return kind
        found = self.scope.resolve(node.path)
        if isinstance(found, Unresolved):
            if found.message:
                self.report(d.PT301, found.message, src, base + node.start)
                return t.ANY
            prefix = ".".join(node.path[: found.index + 1])
            hint = _LITERAL_SLIPS.get(prefix) or suggest(prefix, list(found.candidates))
            self.report(d.PT301, f"unknown name `{prefix}`", src, base + node.start, hint)
            return t.ANY
        root = node.path[0]
        if (root if root not in self.scope.scopes else "symbol") not in allowed:
            where = {ENVELOPE_CONTEXT: "an envelope value", LATCH_CONTEXT: "a latch's `when`"}.get(
                allowed, "a mode's `when`"
            )
            names = ", ".join(f"`{n}`" for n in sorted(allowed))
            self.report(
                d.PT310,
                f"`{node.dotted}` cannot be read in {where} (only {names})",
                src,
                base + node.start,
            )
        assert isinstance(found, Ref)
        return found.type

    def call(
        self,
        node: s.Call,
        func: str,
        args: tuple[s.Expr, ...],
        src: ExprSource,
        allowed: frozenset[str],
        base: int,
    ) -> Type:
        fn = FUNCTIONS.get(func)
        if fn is None:
            hint = suggest(func, list(FUNCTIONS))
            self.report(d.PT305, f"unknown function `{func}`", src, base + node.start, hint)
            for a in args:
                self.infer(a, src, allowed, base)
            return t.ANY
        arity = fn.arity_problem(len(args))
        if arity is not None:
            self.report(d.PT305, arity, src, base + node.start)
        types = [self.infer(a, src, allowed, base) for a in args]
        result, problems = fn.type_rule(args, types)
        for index, message in problems:
            self.report(d.PT302, message, src, base + args[index].start)
        return result

    # --- policy parts ----------------------------------------------------------------
    def boolean(self, src: ExprSource, allowed: frozenset[str], what: str) -> s.Expr | None:
        node = self.parse(src)
        if node is None:
            return None
        kind = self.infer(node, src, allowed)
        if kind.kind not in ("bool", "any"):
            self.report(
                d.PT303,
                f"{what} must be true or false, but `{s.unparse(node)}` is a {kind}",
                src,
                node.start,
            )
        return node

    def numeric(self, src: ExprSource, allowed: frozenset[str], what: str) -> s.Expr | None:
        node = self.parse(src)
        if node is None:
            return None
        kind = self.infer(node, src, allowed)
        if kind.kind not in ("number", "any"):
            self.report(
                d.PT304,
                f"{what} must be a number, but `{s.unparse(node)}` is a {kind}",
                src,
                node.start,
            )
        return node

    def message(self, src: ExprSource | None) -> tuple[MessagePart, ...]:
        if src is None:
            return ()
        parts: list[MessagePart] = []
        pos = 0
        for m in re.finditer(r"\{\{|\}\}|\{([^{}]*)\}", src.text):
            parts.append(src.text[pos : m.start()])
            pos = m.end()
            if m.group(1) is None:
                parts.append(m.group(0)[0])
                continue
            inner = m.group(1)
            node = self.parse(src, base=m.start(1), text=inner)
            if node is None:
                continue
            before = len(self.problems)
            self.infer(node, src, INTENT_CONTEXT, base=m.start(1))
            for i in range(before, len(self.problems)):  # a placeholder's own code
                p = self.problems[i]
                if p.code == d.PT301:
                    message = f"message placeholder `{{{inner.strip()}}}`: {p.message}"
                    self.problems[i] = d.diagnostic(d.PT306, message, p.span, p.help)
            parts.append(node)
        parts.append(src.text[pos:])
        return tuple(p for p in parts if p != "")

    def config_keys(self) -> None:
        sections = (
            ("strategies", self.spec.strategies),
            ("symbols", self.spec.symbols),
            ("cohorts", {k: c.attrs for k, c in self.spec.cohorts.items()}),
        )
        for section, configs in sections:
            for name, cfg in configs.items():
                for key in cfg:
                    if key in RESERVED_KEYS:
                        where = self.doc.span((section, name, key), key=True)
                        self.problems.append(
                            d.diagnostic(
                                d.PT309,
                                f"`{key}` is a live counter or built-in name and cannot be configured in {section}",
                                where,
                            )
                        )
        for mode in self.spec.modes.values():
            for key in mode.attrs:
                if key in MODE_FIELDS:
                    where = self.doc.span(("modes", mode.name, key), key=True)
                    self.problems.append(
                        d.diagnostic(
                            d.PT309, f"`mode.{key}` is built in and cannot be configured", where
                        )
                    )
        self.problems += declaration_problems(self.spec, self.doc)
        seen: dict[str, int] = {}
        for rule in self.spec.rules:
            if rule.id in seen:
                where = self.doc.span((*rule.path, "id"))
                self.problems.append(
                    d.diagnostic(
                        d.PT307,
                        f"duplicate rule id `{rule.id}` (first used by `rules[{seen[rule.id]}]`)",
                        where,
                    )
                )
            else:
                seen[rule.id] = rule.index
        assert not set(LIVE_FIELDS) - RESERVED_KEYS


def check(spec: PolicySpec, doc: SourceMap) -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Check every expression; returns the checked policy (None on any error) and diagnostics."""
    c = _Checker(spec, doc, Scope.of(spec))
    c.config_keys()
    mode_whens: dict[str, s.Expr] = {}
    for mode in spec.modes.values():
        if mode.when is not None:
            node = c.boolean(mode.when, MODE_CONTEXT, f"the `when` of mode `{mode.name}`")
            if node is not None:
                mode_whens[mode.name] = node
    rules: list[CheckedRule] = []
    for rule in spec.rules:
        if rule.kind == "limit":
            expr = c.numeric(rule.expr, INTENT_CONTEXT, f"the limit of rule `{rule.id}`")
        else:
            expr = c.boolean(rule.expr, INTENT_CONTEXT, f"`{rule.kind}` of rule `{rule.id}`")
        when = (
            c.boolean(rule.when, INTENT_CONTEXT, f"the `when` of rule `{rule.id}`")
            if rule.when
            else None
        )
        message = c.message(rule.message)
        if expr is not None:
            rules.append(CheckedRule(rule, expr, when, message))
    latch_whens: dict[str, s.Expr] = {}
    for latch in spec.latches.values():
        node = c.boolean(latch.when, LATCH_CONTEXT, f"the `when` of latch `{latch.name}`")
        if node is not None:
            latch_whens[latch.name] = node
    properties: dict[str, s.Expr] = {}
    for prop in spec.properties:
        node = c.boolean(prop.check, PROPERTY_CONTEXT, f"the `assert` of property `{prop.id}`")
        if node is not None:
            properties[prop.id] = node
    envelope: dict[str, s.Expr] = {}
    for key, src in spec.envelope.items():
        node = c.numeric(src, ENVELOPE_CONTEXT, f"envelope `{key}`")
        if node is not None:
            envelope[key] = node
    problems = d.sort_diagnostics(c.problems)
    if any(p.severity is d.Severity.ERROR for p in problems):
        return None, problems
    checked = CheckedPolicy(
        spec, c.scope, tuple(rules), mode_whens, envelope, tuple(problems), latch_whens, properties
    )
    return checked, problems
