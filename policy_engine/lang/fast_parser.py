"""The hand-written fast path of the parser: a regex tokenizer and precedence climbing.

It builds exactly the AST the Lark grammar builds (same nodes, same offsets) for
every valid expression it recognises, and gives up (returns ``None``) on anything
else, so that every error message and offset comes from Lark. It recurses once per
bracket level only; the bracket pre-pass in :mod:`.parser` bounds that at
:data:`~.lexical.MAX_DEPTH`.
"""

from __future__ import annotations

import re

from . import syntax as s
from .errors import ExprSyntaxError
from .lexical import MAX_DEPTH, parse_number, unquote

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


def fast_parse(text: str) -> s.Expr | None:
    """The AST of ``text``, or ``None`` where Lark must decide."""
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
        return unquote(raw, 0)
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
