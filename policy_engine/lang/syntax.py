"""The expression AST: frozen dataclasses with source offsets.

Offsets (``start``, ``end``) are character positions inside the expression
text; :class:`policy_engine.loader.ExprText` maps them back to the YAML file.
No Lark type appears here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Num:
    value: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Name:
    """A dotted name such as ``strategy.max_trades`` (``path`` has every part)."""

    path: tuple[str, ...]
    start: int
    end: int

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Index:
    target: Expr
    key: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Unary:
    """Arithmetic negation (``op`` is ``-``)."""

    op: str
    operand: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic: ``op`` is one of ``+ - * /``."""

    op: str
    left: Expr
    right: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison chain: ``first op0 rest0 op1 rest1 ...``."""

    first: Expr
    ops: tuple[str, ...]
    rest: tuple[Expr, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    op: str
    values: tuple[Expr, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Cond:
    """``body if test else orelse``."""

    body: Expr
    test: Expr
    orelse: Expr
    start: int
    end: int


Expr: TypeAlias = (
    Num
    | Str
    | Bool
    | ListLit
    | Name
    | Index
    | Call
    | Unary
    | Not
    | Binary
    | Compare
    | BoolOp
    | Cond
)

COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=", "in", "not in")
ARITH_OPS = ("+", "-", "*", "/")


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``, in source order."""
    match node:
        case ListLit(items=items):
            return items
        case Index(target=t, key=k):
            return (t, k)
        case Call(args=args):
            return args
        case Unary(operand=o) | Not(operand=o):
            return (o,)
        case Binary(left=left, right=right):
            return (left, right)
        case Compare(first=first, rest=rest):
            return (first, *rest)
        case BoolOp(values=values):
            return values
        case Cond(body=b, test=t, orelse=o):
            return (t, b, o)
        case _:
            return ()


def walk(node: Expr) -> list[Expr]:
    """Every node of the tree, pre-order, without recursion."""
    out: list[Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(children(n)))
    return out


def unparse(node: Expr, source: str | None = None) -> str:
    """Canonical source text (parenthesised only where precedence needs it).

    With ``source`` (the text ``node`` was parsed from), numbers and strings keep their
    spelling (`6%`, `1_500`, `'x'`), read through their offsets: what ``policy fmt`` prints.
    """
    return _unparse(node, 0, source)


_PREC = {"cond": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 6, "-": 6, "*": 7, "/": 7, "neg": 8}


def _unparse(node: Expr, outer: int, src: str | None = None) -> str:
    match node:
        case Num(value=v):
            if src is not None:
                return src[node.start : node.end]
            text = repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
            return text
        case Str(value=v):
            if src is not None:
                return src[node.start : node.end]
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        case Bool(value=v):
            return "true" if v else "false"
        case ListLit(items=items):
            return "[" + ", ".join(_unparse(i, 0, src) for i in items) + "]"
        case Name():
            return node.dotted
        case Index(target=t, key=k):
            return f"{_unparse(t, 9, src)}[{_unparse(k, 0, src)}]"
        case Call(func=f, args=args):
            return f"{f}(" + ", ".join(_unparse(a, 0, src) for a in args) + ")"
        case Unary(operand=o):
            return _wrap(f"-{_unparse(o, _PREC['neg'], src)}", _PREC["neg"], outer)
        case Not(operand=o):
            return _wrap(f"not {_unparse(o, _PREC['not'], src)}", _PREC["not"], outer)
        case Binary(op=op, left=left, right=right):
            p = _PREC[op]
            text = f"{_unparse(left, p, src)} {op} {_unparse(right, p + 1, src)}"
            return _wrap(text, p, outer)
        case Compare(first=first, ops=ops, rest=rest):
            p = _PREC["cmp"]
            parts = [_unparse(first, p + 1, src)]
            for op, r in zip(ops, rest, strict=True):
                parts.append(f"{op} {_unparse(r, p + 1, src)}")
            return _wrap(" ".join(parts), p, outer)
        case BoolOp(op=op, values=values):
            p = _PREC[op]
            return _wrap(f" {op} ".join(_unparse(v, p + 1, src) for v in values), p, outer)
        case Cond(body=b, test=t, orelse=o):
            p = _PREC["cond"]
            text = (
                f"{_unparse(b, p + 1, src)} if {_unparse(t, p + 1, src)} else {_unparse(o, p, src)}"
            )
            return _wrap(text, p, outer)
    raise AssertionError(f"unknown node {node!r}")  # pragma: no cover


def _wrap(text: str, prec: int, outer: int) -> str:
    return f"({text})" if prec < outer else text
