"""Expression text -> :mod:`policy_engine.syntax` AST.

Two parsers build the same AST. The fast path (a single compiled-regex
tokenizer and a hand-written precedence-climbing parser, :func:`parse_expression_fast`)
handles every valid expression it recognises; on anything else (a syntax error,
a token it does not expect, an unknown string escape, a number out of range,
nesting past the limit) it gives up and the Lark path runs, so every error
message and offset is Lark's. The fast path recurses once per bracket level
only, and the bracket pre-pass bounds that at :data:`MAX_DEPTH`.

Lark parses (LALR, no recursion); the tree is converted bottom-up without
recursion either, so a hostile 10,000-deep expression costs a diagnostic,
never a RecursionError. Lark's exceptions do not leave this module.

Successful parses are memoised by text (the AST is immutable); errors raise
every time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Lark is imported on first use: valid expressions never need it
    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedInput

from . import syntax as s

MAX_EXPR_CHARS = 4096
MAX_DEPTH = 64

_TOKEN_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "MINUS": "`-`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "DOT": "`.`",
    "$END": "end of expression",
}


@dataclass(eq=False)  # not frozen: raising machinery sets __traceback__
class ExprSyntaxError(Exception):
    """A problem in the expression text at ``offset`` (0-based)."""

    message: str
    offset: int
    too_complex: bool = False


@cache
def _lark() -> Lark:
    from lark import Lark

    grammar = files("policy_engine").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse_expression(text: str) -> s.Expr:
    """Parse one expression. Raises :class:`ExprSyntaxError`."""
    return _parse_cached(text)


@lru_cache(maxsize=4096)  # only returns are cached: an ExprSyntaxError raises every time
def _parse_cached(text: str) -> s.Expr:
    _precheck(text)
    tree = _fast(text)
    if tree is None:
        tree = _parse_lark_checked(text)
    return tree


def parse_expression_lark(text: str) -> s.Expr:
    """Parse one expression with Lark only (the reference; no fast path, no cache)."""
    _precheck(text)
    return _parse_lark_checked(text)


def parse_expression_fast(text: str) -> s.Expr | None:
    """Parse with the hand-written parser only; ``None`` where it would leave the text to Lark.

    ``None`` also for text the common checks (length, bracket nesting, emptiness) refuse.
    """
    try:
        _precheck(text)
    except ExprSyntaxError:
        return None
    return _fast(text)


def _precheck(text: str) -> None:
    if len(text) > MAX_EXPR_CHARS:
        raise ExprSyntaxError(
            f"expression is {len(text)} characters long (the limit is {MAX_EXPR_CHARS})", 0, True
        )
    if text.count("(") + text.count("[") > MAX_DEPTH:  # else the nesting cannot exceed it
        _check_bracket_depth(text)
    if not text.strip():
        raise ExprSyntaxError("empty expression", 0)


def _parse_lark_checked(text: str) -> s.Expr:
    from lark.exceptions import UnexpectedInput

    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    return _convert(tree, text)


def _check_bracket_depth(text: str) -> None:
    # Cheap pre-pass so a pathological nesting never reaches the parser.
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExprSyntaxError(
                    f"expression nests deeper than {MAX_DEPTH} levels", i, too_complex=True
                )
        elif ch in ")]":
            depth -= 1


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_NAMES:
        return _TOKEN_NAMES[token_type]
    return f"`{token_type.lower()}`"


def _syntax_error(exc: UnexpectedInput, text: str) -> ExprSyntaxError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    offset = max(0, min(getattr(exc, "pos_in_stream", 0) or 0, len(text)))
    if isinstance(exc, UnexpectedCharacters):
        return ExprSyntaxError(f"unexpected character `{text[offset]}`", offset)
    end = len(text.rstrip())  # just past the last character, not on a following blank line
    if isinstance(exc, UnexpectedEOF):
        return ExprSyntaxError("unexpected end of expression", end)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            return ExprSyntaxError("unexpected end of expression", end)
        expected = sorted(_describe(t) for t in exc.expected if not t.startswith("__"))
        offset = tok.start_pos if tok.start_pos is not None else offset
        hint = f" (expected {', '.join(expected[:6])})" if expected and len(expected) <= 6 else ""
        return ExprSyntaxError(f"unexpected `{tok.value}`{hint}", offset)
    return ExprSyntaxError("invalid expression", offset)  # pragma: no cover


def parse_number(text: str) -> float:
    """A DSL or YAML number literal: ``1_500`` -> 1500.0, ``6%`` -> 0.06 (exactly as 0.06)."""
    raw = text.replace("_", "")
    percent = raw.endswith("%")
    if percent:
        raw = raw[:-1]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"`{text}` is not a number") from None
    if percent:
        value = value / 100
    result = float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"`{text}` is not a finite number")
    return result


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unquote(raw: str, start: int) -> str:
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ExprSyntaxError(f"unknown escape `\\{nxt}` in string", start + 1 + i)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _span(item: Tree[Any] | Token) -> tuple[int, int]:
    from lark import Token

    if isinstance(item, Token):
        return int(item.start_pos or 0), int(item.end_pos or 0)
    return int(item.meta.start_pos), int(item.meta.end_pos)


def _convert(tree: Tree[Any] | Token, text: str) -> s.Expr:
    from lark import Token, Tree

    if isinstance(tree, Token):  # a lone terminal, e.g. the whole expression is `5`
        tree = Tree("number" if tree.type == "NUMBER" else "name", [tree])
        tree.meta.start_pos, tree.meta.end_pos = _span(tree.children[0])
    done: dict[int, tuple[s.Expr, int]] = {}
    for sub in tree.iter_subtrees():  # bottom-up, iterative
        kids: list[Any] = []
        depth = 0
        for child in sub.children:
            if isinstance(child, Tree):
                node, d = done.pop(id(child))
                kids.append(node)
                depth = max(depth, d)
            else:
                kids.append(child)
        depth += 1
        start, end = _span(sub)
        if depth > MAX_DEPTH:
            raise ExprSyntaxError(
                f"expression nests deeper than {MAX_DEPTH} levels", start, too_complex=True
            )
        done[id(sub)] = (_build(sub.data, kids, start, end, text), depth)
    return done[id(tree)][0]


def _build(kind: str, kids: list[Any], start: int, end: int, text: str) -> s.Expr:
    from lark import Token

    def expr(k: Any) -> s.Expr:
        if isinstance(k, Token):  # an inlined single terminal
            return _terminal(k, text)
        return k  # type: ignore[no-any-return]

    match kind:
        case "number" | "string" | "true" | "false":
            if kind == "true":
                return s.Bool(True, start, end)
            if kind == "false":
                return s.Bool(False, start, end)
            return _terminal(kids[0], text)
        case "name":
            return s.Name(tuple(str(k) for k in kids), start, end)
        case "list":
            return s.ListLit(tuple(expr(k) for k in kids if k is not None), start, end)
        case "call":
            func = str(kids[0])
            args = tuple(expr(k) for k in kids[1:] if k is not None)
            return s.Call(func, args, start, end)
        case "index":
            return s.Index(expr(kids[0]), expr(kids[1]), start, end)
        case "neg":
            return s.Unary("-", expr(kids[0]), start, end)
        case "not_":
            return s.Not(expr(kids[0]), start, end)
        case "binary":
            return s.Binary(str(kids[1]), expr(kids[0]), expr(kids[2]), start, end)
        case "compare":
            first = expr(kids[0])
            ops = tuple(" ".join(str(t) for t in op) for op in kids[1::2])
            rest = tuple(expr(k) for k in kids[2::2])
            return s.Compare(first, ops, rest, start, end)
        case "comp_op":
            return kids  # type: ignore[return-value]  # consumed by "compare"
        case "and_" | "or_":
            return s.BoolOp(kind[:-1], tuple(expr(k) for k in kids), start, end)
        case "cond":
            return s.Cond(expr(kids[0]), expr(kids[1]), expr(kids[2]), start, end)
    raise AssertionError(f"unhandled grammar rule {kind}")  # pragma: no cover


def _terminal(tok: Token, text: str) -> s.Expr:
    start, end = _span(tok)
    if tok.type == "NUMBER":
        try:
            return s.Num(parse_number(str(tok)), start, end)
        except ValueError as exc:
            raise ExprSyntaxError(str(exc), start) from None
    if tok.type == "STRING":
        return s.Str(_unquote(str(tok), start), start, end)
    return s.Name((str(tok),), start, end)


# --- the fast path -----------------------------------------------------------------------
#
# Tokens are the grammar's terminals, all alternatives of one compiled regex (whitespace
# is the grammar's WS, `[ \t\f\r\n]`, not `\s`). A word is a keyword exactly when it is one of
# the eight keywords, as the NAME terminal's lookahead has it. Lark's contextual lexer also
# splits a keyword off the front of a longer word where no name may follow (`a innie` is
# `a in nie`); the fast path sees one name there, gives up, and Lark parses it.
#
# Spans follow Lark's `propagate_positions`: a node runs from the start of its first child's
# *container* to the end of its last child's container, where a parenthesised expression's
# container includes its parentheses but the node inside keeps its own span. Every parse
# method below therefore returns ``(node, container_start, container_end)``.

_KEYWORDS = frozenset(("and", "or", "not", "in", "if", "else", "true", "false"))
_COMPARE = frozenset(("<", "<=", ">", ">=", "==", "!=", "in"))
_TOKEN_RE = re.compile(
    r"[ \t\f\r\n]+"
    r"|(?P<NUM>[0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9]+)?%?)"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)"
    r"""|(?P<STR>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"|(?P<OP><=|>=|==|!=|[-+*/<>()\[\],.])"
    r"|(?P<BAD>[\s\S])"
)
_END = "$"

_Parsed = tuple[s.Expr, int, int]  # node, container start, container end


class _GiveUp(Exception):
    """The fast path does not handle this text; Lark decides."""


def _fast(text: str) -> s.Expr | None:
    try:
        parser = _FastParser(text)
        node, _, _ = parser.expr()
        if parser.kinds[parser.i] != _END:
            return None
    except (_GiveUp, RecursionError):
        return None
    if len(parser.kinds) - 1 > MAX_DEPTH and _depth(node) > MAX_DEPTH:
        return None  # each node owns at least one token, so few tokens cannot nest too deep
    return node


def _depth(root: s.Expr) -> int:
    """The depth of the tree (a leaf is 1), as the Lark path's limit counts it; no recursion."""
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in s.children(node))
    return deepest


def _fast_string(raw: str) -> str:
    body = raw[1:-1]
    if "\\" not in body:
        return body
    try:
        return _unquote(raw, 0)
    except ExprSyntaxError:  # an unknown escape: Lark reports it with its own offset
        raise _GiveUp from None


def _fast_number(raw: str) -> float:
    if raw.endswith("%"):
        try:
            return parse_number(raw)
        except ValueError:
            raise _GiveUp from None
    # float() of the digits is the same correctly rounded value as float(Decimal(digits)).
    value = float(raw.replace("_", "") if "_" in raw else raw)
    if value == float("inf"):
        raise _GiveUp
    return value


def _bool_op(op: str, operands: list[_Parsed]) -> _Parsed:
    if len(operands) == 1:
        return operands[0]
    start, end = operands[0][1], operands[-1][2]
    return s.BoolOp(op, tuple(o[0] for o in operands), start, end), start, end


class _FastParser:
    """Precedence climbing over the grammar's levels: a loop per level, recursion per bracket."""

    __slots__ = ("ends", "i", "kinds", "starts", "text")

    def __init__(self, text: str) -> None:
        kinds: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for m in _TOKEN_RE.finditer(text):
            group = m.lastgroup
            if group is None:  # whitespace
                continue
            if group == "NAME":
                word = m.group()
                kinds.append(word if word in _KEYWORDS else "NAME")
            elif group == "OP":
                kinds.append(m.group())
            elif group == "BAD":
                raise _GiveUp
            else:
                kinds.append(group)
            starts.append(m.start())
            ends.append(m.end())
        kinds.append(_END)
        starts.append(len(text))
        ends.append(len(text))
        self.text = text
        self.kinds = kinds
        self.starts = starts
        self.ends = ends
        self.i = 0

    def expect(self, kind: str) -> int:
        """Consume a ``kind`` token; its end offset."""
        i = self.i
        if self.kinds[i] != kind:
            raise _GiveUp
        self.i = i + 1
        return self.ends[i]

    # The methods follow the grammar's levels, but every level that needs no bracket is a loop
    # inside its caller: a bracket level costs five or six Python frames, so the 64 levels the
    # pre-pass lets through stay far from the recursion limit.

    # expr: or_expr | or_expr "if" or_expr "else" expr   (right-nested, built in a loop)
    def expr(self) -> _Parsed:
        first = self.or_expr()
        if self.kinds[self.i] != "if":
            return first
        heads: list[tuple[_Parsed, _Parsed]] = []
        body = first
        while True:
            self.i += 1  # "if"
            test = self.or_expr()
            self.expect("else")
            heads.append((body, test))
            nxt = self.or_expr()
            if self.kinds[self.i] != "if":
                break
            body = nxt
        node, _, end = nxt
        for (b, bs, _), (t, _, _) in reversed(heads):
            node = s.Cond(b, t, node, bs, end)
        return node, heads[0][0][1], end

    # or_expr: and_expr ("or" and_expr)*;  and_expr: not_expr ("and" not_expr)*;
    # not_expr: comparison | "not" not_expr;  comparison: sum (comp_op sum)*
    def or_expr(self) -> _Parsed:
        kinds = self.kinds
        starts = self.starts
        ors: list[_Parsed] = []
        while True:
            ands: list[_Parsed] = []
            while True:
                nots: list[int] = []
                while kinds[self.i] == "not":
                    nots.append(starts[self.i])
                    self.i += 1
                operand = self.comparison()
                if nots:
                    node, _, end = operand
                    for start in reversed(nots):
                        node = s.Not(node, start, end)
                    operand = node, nots[0], end
                ands.append(operand)
                if kinds[self.i] != "and":
                    break
                self.i += 1
            ors.append(_bool_op("and", ands))
            if kinds[self.i] != "or":
                break
            self.i += 1
        return _bool_op("or", ors)

    def comparison(self) -> _Parsed:
        first = self.arith()
        kinds = self.kinds
        ops: list[str] = []
        rest: list[s.Expr] = []
        end = first[2]
        while True:
            kind = kinds[self.i]
            if kind in _COMPARE:
                self.i += 1
            elif kind == "not" and kinds[self.i + 1] == "in":
                kind = "not in"
                self.i += 2
            else:
                break
            node, _, end = self.arith()
            ops.append(kind)
            rest.append(node)
        if not ops:
            return first
        return s.Compare(first[0], tuple(ops), tuple(rest), first[1], end), first[1], end

    # sum: product (ADD_OP product)*;  product: unary (MUL_OP unary)*   (left-associative)
    def arith(self) -> _Parsed:
        kinds = self.kinds
        left: _Parsed | None = None
        add_op = ""
        while True:
            prod = self.unary()
            while (op := kinds[self.i]) == "*" or op == "/":
                self.i += 1
                right, _, end = self.unary()
                prod = s.Binary(op, prod[0], right, prod[1], end), prod[1], end
            if left is not None:
                left = s.Binary(add_op, left[0], prod[0], left[1], prod[2]), left[1], prod[2]
            else:
                left = prod
            add_op = kinds[self.i]
            if add_op != "+" and add_op != "-":
                return left
            self.i += 1

    # unary: postfix | "-" unary;  postfix: atom ("[" expr "]")*;  atom
    def unary(self) -> _Parsed:
        kinds = self.kinds
        minuses: list[int] = []
        while kinds[self.i] == "-":
            minuses.append(self.starts[self.i])
            self.i += 1
        i = self.i
        kind = kinds[i]
        start, end = self.starts[i], self.ends[i]
        self.i = i + 1
        parsed: _Parsed
        if kind == "NAME":
            parsed = self.name_or_call(start, end)
        elif kind == "NUM":
            parsed = s.Num(_fast_number(self.text[start:end]), start, end), start, end
        elif kind == "STR":
            parsed = s.Str(_fast_string(self.text[start:end]), start, end), start, end
        elif kind == "(":
            node, _, _ = self.expr()
            parsed = node, start, self.expect(")")
        elif kind == "[":
            parsed = self.list_lit(start)
        elif kind == "true" or kind == "false":
            parsed = s.Bool(kind == "true", start, end), start, end
        else:
            raise _GiveUp
        while kinds[self.i] == "[":
            self.i += 1
            key, _, _ = self.expr()
            end = self.expect("]")
            parsed = s.Index(parsed[0], key, parsed[1], end), parsed[1], end
        if not minuses:
            return parsed
        node, _, end = parsed
        for start in reversed(minuses):
            node = s.Unary("-", node, start, end)
        return node, minuses[0], end

    def name_or_call(self, start: int, end: int) -> _Parsed:
        kinds = self.kinds
        text = self.text
        first = text[start:end]
        if kinds[self.i] == "(":  # NAME "(" [expr ("," expr)*] ")"
            self.i += 1
            args: list[s.Expr] = []
            if kinds[self.i] != ")":
                args.append(self.expr()[0])
                while kinds[self.i] == ",":
                    self.i += 1
                    args.append(self.expr()[0])
            end = self.expect(")")
            return s.Call(first, tuple(args), start, end), start, end
        path = [first]
        while kinds[self.i] == ".":  # NAME ("." NAME)*
            self.i += 1
            i = self.i
            if kinds[i] != "NAME":
                raise _GiveUp
            path.append(text[self.starts[i] : self.ends[i]])
            end = self.ends[i]
            self.i = i + 1
        return s.Name(tuple(path), start, end), start, end

    def list_lit(self, start: int) -> _Parsed:  # "[" [expr ("," expr)* [","]] "]"
        kinds = self.kinds
        items: list[s.Expr] = []
        if kinds[self.i] != "]":
            items.append(self.expr()[0])
            while kinds[self.i] == ",":
                self.i += 1
                if kinds[self.i] == "]":
                    break
                items.append(self.expr()[0])
        end = self.expect("]")
        return s.ListLit(tuple(items), start, end), start, end
