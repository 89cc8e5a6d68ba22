"""Expression text -> :mod:`.syntax` AST (the public entry point of parsing).

Two parsers build the same AST. The fast path (a single compiled-regex
tokenizer and a precedence-climbing parser in :mod:`.fast_parser`)
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
from functools import cache, lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Lark is imported on first use: valid expressions never need it
    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedInput

from . import syntax as s
from .errors import ExprSyntaxError
from .fast_parser import fast_parse
from .lexical import MAX_DEPTH, MAX_EXPR_CHARS, parse_number, unquote

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


@cache
def _lark() -> Lark:
    from lark import Lark

    grammar = files("policy_engine.lang").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse_expression(text: str) -> s.Expr:
    """Parse one expression. Raises :class:`ExprSyntaxError`."""
    return _parse_cached(text)


@lru_cache(maxsize=4096)  # only returns are cached: an ExprSyntaxError raises every time
def _parse_cached(text: str) -> s.Expr:
    _precheck(text)
    tree = fast_parse(text)
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
    return fast_parse(text)


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
        ch = text[offset]
        return ExprSyntaxError(f"unexpected character `{ch}`", offset, help=slip_help(text, offset))
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
        return ExprSyntaxError(
            f"unexpected `{tok.value}`{hint}", offset, help=slip_help(text, offset, str(tok.value))
        )
    return ExprSyntaxError("invalid expression", offset)  # pragma: no cover


_WORD_SLIPS = {"AND": "and", "OR": "or", "NOT": "not", "TRUE": "true", "FALSE": "false"}


def slip_help(text: str, offset: int, token: str | None = None) -> str | None:
    """How to fix a syntax error that is a common slip from another language, or None.

    ``=`` for ``==``, ``&&`` / ``||`` / ``!`` for ``and`` / ``or`` / ``not``, ``6 %`` or
    ``6%%`` for ``6%``, ``<>`` for ``!=``, an unclosed string, ``AND`` for ``and``.
    """
    ch = text[offset : offset + 1]
    before = text[:offset]
    if token is not None and token in _WORD_SLIPS:
        return f"write `{_WORD_SLIPS[token]}`: keywords are lowercase"
    if ch == "=":
        pair = text[offset : offset + 2]
        if pair in ("=>", "=<"):
            return f"write `{pair[::-1]}`"
        return "to compare, write `==`" if not before.endswith("=") else "write `==`"
    if ch == "&":
        return "write `and` instead of `&&`"
    if ch == "|":
        return "write `or` instead of `||`"
    if ch == "!":
        return "write `not` instead of `!`"
    if ch == ">" and before.endswith("<"):
        return "write `!=` instead of `<>`"
    if ch in ("'", '"'):
        return f"close the string with a matching `{ch}`"
    if ch == "%":
        spaced = re.search(r"([0-9][0-9_]*(?:\.[0-9_]+)?)\s+$", before)
        if spaced:
            return f"write the percentage without a space: `{spaced.group(1)}%`"
        doubled = re.search(r"([0-9][0-9_]*(?:\.[0-9_]+)?)%$", before)
        if doubled:
            return f"a percentage takes one `%`: `{doubled.group(1)}%`"
        return "`%` only follows a number, as in `6%`; there is no remainder operator"
    return None


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
        return s.Str(unquote(str(tok), start), start, end)
    return s.Name((str(tok),), start, end)
