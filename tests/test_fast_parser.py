"""The hand-written fast parser against the Lark reference: same AST and offsets, same errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parser_props import expressions, texts

from policy_engine.lang import syntax as s
from policy_engine.lang.errors import ExprSyntaxError
from policy_engine.lang.lexical import MAX_DEPTH
from policy_engine.lang.parser import (
    parse_expression,
    parse_expression_fast,
    parse_expression_lark,
)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPR_KEYS = {"require", "limit", "allow", "when"}


def outcome(parse: Callable[[str], s.Expr], text: str) -> Any:
    """The AST, or the error's message, offset and too_complex flag."""
    try:
        return parse(text)
    except ExprSyntaxError as exc:
        return ("error", exc.message, exc.offset, exc.too_complex)


def assert_same(text: str) -> Any:
    """parse_expression agrees with Lark; the fast path, where it answers, agrees too."""
    reference = outcome(parse_expression_lark, text)
    assert outcome(parse_expression, text) == reference, text
    assert outcome(parse_expression, text) == reference, text  # cached, or raised again
    fast = parse_expression_fast(text)
    if fast is not None:
        assert fast == reference, text
    return reference


# --- generated valid expressions, formatted every way the grammar allows -------------------

SPACE = st.sampled_from(["", "", " ", " ", "  ", "\t", "\n", " \r\n ", "\f"])
SPACE1 = st.sampled_from([" ", " ", "  ", "\t", "\n", " \r\n ", "\f "])
PREC = {"cond": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 6, "-": 6, "*": 7, "/": 7}
ESCAPE = {"\\": "\\\\", "\n": "\\n"}


def render(node: s.Expr, outer: int, draw: Any) -> str:
    """Source text for ``node`` in a context needing precedence ``outer``, randomly spaced."""

    def sp() -> str:
        return str(draw(SPACE))

    def kw(word: str) -> str:
        return f"{draw(SPACE1)}{word}{draw(SPACE1)}"

    def sub(child: s.Expr, prec: int) -> str:
        return render(child, prec, draw)

    prec = 10
    match node:
        case s.Num(value=v):
            if v.is_integer() and v < 1e15 and draw(st.booleans()):
                text = f"{int(v):_}" if draw(st.booleans()) else str(int(v))
            else:
                text = repr(v)
        case s.Str(value=v):
            quote = draw(st.sampled_from(["'", '"']))
            escape = {**ESCAPE, quote: "\\" + quote}
            if draw(st.booleans()):
                escape["\t"] = "\\t"
                escape["'" if quote == '"' else '"'] = "\\" + ("'" if quote == '"' else '"')
            text = quote + "".join(escape.get(ch, ch) for ch in v) + quote
        case s.Bool(value=v):
            text = "true" if v else "false"
        case s.Name(path=path):
            text = ".".join(f"{sp()}{part}{sp()}" for part in path).strip(" \t\n\r\f")
        case s.ListLit(items=items):
            inner = ",".join(f"{sp()}{sub(i, 0)}{sp()}" for i in items)
            trailing = "," if items and draw(st.booleans()) else ""
            text = f"[{inner}{trailing}{sp()}]"
        case s.Call(func=f, args=args):
            text = f"{f}{sp()}(" + ",".join(f"{sp()}{sub(a, 0)}{sp()}" for a in args) + f"{sp()})"
        case s.Index(target=t, key=k):
            prec = 9
            text = f"{sub(t, 9)}{sp()}[{sp()}{sub(k, 0)}{sp()}]"
        case s.Unary(operand=o):
            prec = 8
            text = f"-{sp()}{sub(o, 8)}"
        case s.Not(operand=o):
            prec = 4
            text = f"not{draw(SPACE1)}{sub(o, 4)}"
        case s.Binary(op=op, left=left, right=right):
            prec = PREC[op]
            text = f"{sub(left, prec)}{sp()}{op}{sp()}{sub(right, prec + 1)}"
        case s.Compare(first=first, ops=ops, rest=rest):
            prec = 5
            text = sub(first, 6)
            for op, r in zip(ops, rest, strict=True):
                word = op.replace(" ", str(draw(SPACE1)))
                text += (kw(word) if op[0].isalpha() else f"{sp()}{op}{sp()}") + sub(r, 6)
        case s.BoolOp(op=op, values=values):
            prec = PREC[op]
            text = kw(op).join(sub(v, prec + 1) for v in values)
        case s.Cond(body=b, test=t, orelse=o):
            prec = 1
            text = f"{sub(b, 2)}{kw('if')}{sub(t, 2)}{kw('else')}{sub(o, 1)}"
    if prec < outer or draw(st.integers(0, 9)) == 0:
        return f"({sp()}{text}{sp()})"
    return text


@st.composite
def formatted(draw: Any) -> str:
    """The text of a random AST with random spacing, redundant parentheses and literal forms."""
    tree = draw(expressions)
    return f"{draw(SPACE)}{render(tree, 0, draw)}{draw(SPACE)}"


@SETTINGS
@given(formatted())
def test_fast_path_builds_the_lark_ast_for_valid_text(text: str) -> None:
    """On any valid expression the fast path answers, with Lark's AST, values and offsets."""
    reference = parse_expression_lark(text)
    assert parse_expression_fast(text) == reference, text
    assert parse_expression(text) == reference, text


@SETTINGS
@given(expressions)
def test_fast_path_on_canonical_text(tree: s.Expr) -> None:
    """The canonical text of any AST parses to the same tree on both paths."""
    text = s.unparse(tree)
    assert parse_expression_fast(text) == parse_expression_lark(text), text


@SETTINGS
@given(texts)
def test_arbitrary_text_same_outcome(text: str) -> None:
    """Arbitrary (mostly invalid) text: the same AST or the same ExprSyntaxError as Lark."""
    assert_same(text)


NUMBER = r"[0-9](_?[0-9])*(\.[0-9](_?[0-9])*)?([eE][+-]?[0-9]{1,3})?%?"


@SETTINGS
@given(st.from_regex(NUMBER, fullmatch=True), st.sampled_from(["{}", "-{}", "x[{}]", "[{},]"]))
def test_number_literals(number: str, shape: str) -> None:
    """Every number literal (underscores, exponents, percent, out of range) as Lark reads it."""
    assert_same(shape.format(number))


# --- every expression in the repository's YAML -------------------------------------------


def _expressions(root: Any) -> Iterator[str]:
    """Expression strings under the expression keys; each shared (aliased) node visited once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                continue  # a golden file holds a YAML alias bomb
            seen.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if key in EXPR_KEYS and isinstance(value, str):
                    yield value
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def corpus() -> list[str]:
    """The require/limit/allow/when strings of every parseable YAML file the project ships."""
    paths = [
        *ROOT.glob("policies/*.yaml"),
        *ROOT.glob("benchmarks/*.yaml"),
        *ROOT.glob("tests/cases/*.yaml"),  # decision test files (`*_test.yaml`)
        *(p for p in ROOT.glob("tests/golden/**/*") if p.suffix in (".yaml", ".yml")),
    ]
    found: dict[str, None] = {}
    for path in sorted(paths):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue  # a golden file about broken YAML or a bad encoding
        for doc in docs:
            found.update(dict.fromkeys(_expressions(doc)))
    return list(found)


CORPUS = corpus()


def test_corpus_is_substantial() -> None:
    """The corpus walk finds the repository's expressions, valid and invalid."""
    assert len(CORPUS) > 50
    results = [outcome(parse_expression_lark, t) for t in CORPUS]
    assert any(isinstance(r, tuple) for r in results)  # the goldens carry syntax errors
    valid = [t for t, r in zip(CORPUS, results, strict=True) if not isinstance(r, tuple)]
    fast = [t for t in valid if parse_expression_fast(t) is not None]
    assert len(fast) == len(valid), sorted(set(valid) - set(fast))


@pytest.mark.parametrize("text", CORPUS)
def test_corpus_expression(text: str) -> None:
    """Each expression in the repository's YAML: Lark's AST, or Lark's exact error."""
    assert_same(text)


# --- keywords, quirks, limits ------------------------------------------------------------

KEYWORD_CASES = [
    "notional",
    "notional > 5",
    "and_x",
    "in_",
    "or_ or and_ and not_",
    "iffy if elsewhere else truely",
    "x not in y",
    "a not  in b",
    "a not\n\tin b",
    "not a in b",
    "not not a",
    "true",
    "false == true",
    "[true, false,]",
    "true.x",
    "x.true",
    "false(1)",
    "true[0]",
    "true = 1",
    "f(true)",
    "x.in",
    "not",
    "not in x",
    "a not b",
    "a in",
    "if",
    "a if b",
    "a if b else",
    "and",
    "x and",
    "else x",
]


@pytest.mark.parametrize("text", KEYWORD_CASES)
def test_keyword_edges(text: str) -> None:
    """Keyword prefixes are names; keywords are never names; failures are Lark's, byte for byte."""
    assert_same(text)


def test_keyword_prefixed_names_are_fast() -> None:
    """Names that start with a keyword take the fast path and stay single names."""
    for text in ("notional", "and_x", "in_", "iffy", "elsewhere", "truely", "false_"):
        assert parse_expression_fast(text) == s.Name((text,), 0, len(text))


def test_true_and_false_are_not_names() -> None:
    """`true` and `false` used as names fail on both paths with the same error."""
    for text in ("true.x", "false(1)", "x.false", "true = 1"):
        assert parse_expression_fast(text) is None
        with pytest.raises(ExprSyntaxError) as fast:
            parse_expression(text)
        with pytest.raises(ExprSyntaxError) as lark:
            parse_expression_lark(text)
        assert (fast.value.message, fast.value.offset) == (lark.value.message, lark.value.offset)


OFFSET_CASES = [
    "(a + b) * c",
    "((a))",
    "  ( a )  ",
    "-(a)[0]",
    "- - (x)",
    "not (x)",
    "(not x) == y",
    "a < b <= (c) in [1, 2,] not in d",
    "(a < b) < c",
    "f( a , (b) )",
    "f()",
    "f (x)[1] [2]",
    "(f(x))[0]",
    '"abc"[0]',
    "[ ]",
    "[1,]",
    "[[1], [2,],]",
    "a . b .c",
    "1 if (a) else (b)",
    "a if b else c if d else e",
    "(a if b else c) if d else (e)",
    "a or b or (c or d)",
    "(a and b) and c",
    "a * -b / c - d + e",
    "6% + 1_000.5e3 - 2.5E-3%",
    "1e5",
    "'a\\'b\\n' + \"x\\ty\\\\\"",
    "'it\"s'",
    "x\r\n and\fy",
]


@pytest.mark.parametrize("text", OFFSET_CASES)
def test_offsets_match_lark(text: str) -> None:
    """Parentheses, chains, `not in`, calls, indexing, trailing commas, conditionals, literals."""
    assert parse_expression_fast(text) == parse_expression_lark(text)


LEFT_TO_LARK = [
    "a innie",  # Lark's contextual lexer reads `in nie`
    "x orb",
    "1andx",
    "'\\q'",  # unknown escape
    "1e999",  # not finite
    "(f)(x)",
    "a.b(x)",
    "f(a,)",
    "[,]",
    "a\fb",
    "a ! b",
    "a = b",
    "2 % 3",
    ".5",
    "x\v",
    "1 + ",
    "(1",
    "1)",
]


@pytest.mark.parametrize("text", LEFT_TO_LARK)
def test_fast_path_gives_up_and_lark_decides(text: str) -> None:
    """What the fast path does not recognise goes to Lark: Lark's AST or Lark's error."""
    assert parse_expression_fast(text) is None
    assert_same(text)


def test_nesting_at_the_limit_is_fast() -> None:
    """The deepest nesting the limits allow parses on the fast path, without a RecursionError."""
    n = MAX_DEPTH
    for text in (
        "(" * n + "1" + ")" * n,
        "[" * (n - 1) + "1" + "]" * (n - 1),
        "abs(" * (n - 1) + "1" + ")" * (n - 1),
        "x" + "[0]" * (n - 1),
        "-" * (n - 1) + "1",
        "not " * (n - 1) + "true",
        "1 if true else " * ((n - 1) // 2) + "1",
        "(" * (n // 2) + "-" * 20 + "x[" * (n // 2 - 1) + "1" + "]" * (n // 2 - 1) + ")" * (n // 2),
    ):
        reference = parse_expression_lark(text)
        assert parse_expression_fast(text) == reference


def test_nesting_past_the_limit_is_left_to_lark() -> None:
    """One level too deep: the fast path gives up; the error is the Lark path's PT202."""
    n = MAX_DEPTH + 1
    for text in (
        "-" * n + "1",
        "not " * n + "true",
        "1 if true else " * n + "1",
        "x" + "[0]" * n,
        " + ".join(["1"] * (n + 1)),
        "(" * n + "1" + ")" * n,
        "-" * 4000 + "1",
    ):
        assert parse_expression_fast(text) is None
        with pytest.raises(ExprSyntaxError) as info:
            parse_expression(text)
        assert info.value.too_complex
        assert assert_same(text)[3] is True


def test_successful_parses_are_memoised_errors_are_not() -> None:
    """The same text gives the same AST object; a bad text raises a fresh error every time."""
    text = "portfolio.heat < 12345 and intent.symbol in ['memo']"
    assert parse_expression(text) is parse_expression(text)
    errors = []
    for _ in range(2):
        with pytest.raises(ExprSyntaxError) as info:
            parse_expression("a +* b")
        errors.append(info.value)
    assert errors[0] is not errors[1]
    assert (errors[0].message, errors[0].offset) == (errors[1].message, errors[1].offset)
