"""Property tests of the expression parser: round trips, robustness, nesting limits, positions."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import PolicyError, load_policy_text
from policy_engine.lang import syntax as s
from policy_engine.lang.errors import ExprSyntaxError
from policy_engine.lang.lexical import MAX_DEPTH
from policy_engine.lang.parser import parse_expression

KEYWORDS = {"and", "or", "not", "in", "if", "else", "true", "false"}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- generated ASTs ------------------------------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS
)
numbers = st.one_of(
    st.integers(min_value=0, max_value=10**18).map(float),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
)
strings = st.text(
    alphabet=st.one_of(st.sampled_from("\"\\\n\t' {}%"), st.characters(codec="utf-8")),
    max_size=12,
).filter(lambda t: "\r" not in t)

leaves = st.one_of(
    st.builds(lambda v: s.Num(v, 0, 0), numbers),
    st.builds(lambda v: s.Str(v, 0, 0), strings),
    st.builds(lambda v: s.Bool(v, 0, 0), st.booleans()),
    st.builds(lambda p: s.Name(tuple(p), 0, 0), st.lists(identifiers, min_size=1, max_size=3)),
)


def _extend(children: st.SearchStrategy[s.Expr]) -> st.SearchStrategy[s.Expr]:
    two_plus = st.lists(children, min_size=2, max_size=4)
    return st.one_of(
        st.builds(lambda xs: s.ListLit(tuple(xs), 0, 0), st.lists(children, max_size=3)),
        st.builds(lambda t, k: s.Index(t, k, 0, 0), children, children),
        st.builds(
            lambda f, xs: s.Call(f, tuple(xs), 0, 0), identifiers, st.lists(children, max_size=3)
        ),
        st.builds(lambda o: s.Unary("-", o, 0, 0), children),
        st.builds(lambda o: s.Not(o, 0, 0), children),
        st.builds(
            lambda op, a, b: s.Binary(op, a, b, 0, 0),
            st.sampled_from(s.ARITH_OPS),
            children,
            children,
        ),
        st.builds(
            lambda first, pairs: s.Compare(
                first, tuple(op for op, _ in pairs), tuple(r for _, r in pairs), 0, 0
            ),
            children,
            st.lists(st.tuples(st.sampled_from(s.COMPARE_OPS), children), min_size=1, max_size=3),
        ),
        st.builds(
            lambda op, xs: s.BoolOp(op, tuple(xs), 0, 0), st.sampled_from(["and", "or"]), two_plus
        ),
        st.builds(lambda b, t, o: s.Cond(b, t, o, 0, 0), children, children, children),
    )


expressions = st.recursive(leaves, _extend, max_leaves=16)


def _shape(node: Any) -> Any:
    """The AST without source offsets (what a round trip must preserve)."""
    if isinstance(node, tuple):
        return tuple(_shape(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [f.name for f in dataclasses.fields(node) if f.name not in ("start", "end")]
        return (type(node).__name__, *(_shape(getattr(node, f)) for f in fields))
    return node


@SETTINGS
@given(expressions)
def test_unparse_parse_round_trip(tree: s.Expr) -> None:
    """Parsing the canonical text of any AST gives back the same AST (offsets aside)."""
    text = s.unparse(tree)
    parsed = parse_expression(text)
    assert _shape(parsed) == _shape(tree), text
    assert s.unparse(parsed) == text


def test_string_with_line_break_round_trips() -> None:
    """A string literal holding a line break or tab unparses to text that parses back to it."""
    tree = parse_expression(r'intent.symbol == "a\nb\tc"')
    assert isinstance(tree, s.Compare)
    assert _shape(parse_expression(s.unparse(tree))) == _shape(tree)


# --- arbitrary text ------------------------------------------------------------------------

GRAMMAR_CHARS = "()[]+-*/<>=!.,%_ \n\t\"'\\0123456789abcdefinotrlsu"
texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=GRAMMAR_CHARS, max_size=60),
    st.lists(
        st.sampled_from(
            [
                "and",
                "or",
                "not",
                "in",
                "if",
                "else",
                "true",
                "false",
                "x",
                "y.z",
                "f(",
                ")",
                "(",
                "[",
                "]",
                ",",
                "1",
                "2.5",
                "6%",
                "1_000",
                "'s'",
                '"t"',
                "-",
                "+",
                "*",
                "/",
                "<",
                "<=",
                "==",
                "!=",
                ">",
                ">=",
            ]
        ),
        max_size=14,
    ).map(" ".join),
)


@SETTINGS
@given(texts)
def test_parser_only_raises_its_own_error(text: str) -> None:
    """On any text the parser returns an AST or raises ExprSyntaxError with an offset in range."""
    try:
        tree = parse_expression(text)
    except ExprSyntaxError as exc:
        assert 0 <= exc.offset <= len(text)
        assert exc.message
        return
    # Whatever parses has a canonical form that parses to the same tree.
    assert _shape(parse_expression(s.unparse(tree))) == _shape(tree)


# --- positions in the YAML file --------------------------------------------------------------

SIMPLE = "()[]+-*<>=!.,% 0123456789abcxyz@#$&|~?^`;"
POLICY = """api_version: policy-engine/v1
name: props
version: 1
rules:
  - id: probe
    require: {scalar}
"""


def _scalar(text: str, style: str) -> str:
    if style == "double":
        return json.dumps(text)
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    return "|\n      " + text  # block literal, one line


@SETTINGS
@given(
    st.text(alphabet=SIMPLE, min_size=1, max_size=40),
    st.sampled_from(["double", "single", "block"]),
)
def test_syntax_error_position_points_at_offending_text(text: str, style: str) -> None:
    """A PT201 about an unexpected character or token points at exactly that text in the file."""
    source = POLICY.format(scalar=_scalar(text, style))
    try:
        load_policy_text(source, "p.yaml")
    except PolicyError as exc:
        lines = source.splitlines()
        for diag in exc.diagnostics:
            assert 1 <= diag.span.line <= len(lines) + 1
            match = re.match(r"unexpected (?:character )?`(.+?)`", diag.message)
            if diag.code != "PT201" or match is None:
                continue
            line = lines[diag.span.line - 1]
            found = line[diag.span.col - 1 :]
            assert found.startswith(match.group(1)), (diag.format(), line)
    else:
        pass  # the text happened to be a valid boolean expression


# --- nesting ---------------------------------------------------------------------------------

DEEP: dict[str, Callable[[int], str]] = {
    "parens": lambda n: "(" * n + "1" + ")" * n,
    "brackets": lambda n: "[" * n + "1" + "]" * n,
    "unary": lambda n: "-" * n + "1",
    "not": lambda n: "not " * n + "true",
    "sum": lambda n: " + ".join(["1"] * n),
    "index": lambda n: "params.m" + "[0]" * n,
    "call": lambda n: "abs(" * n + "1" + ")" * n,
    "cond": lambda n: "1 if true else " * n + "1",
    "compare-parens": lambda n: "(1 < " * n + "2" + ")" * n,
}


@pytest.mark.parametrize("kind", sorted(DEEP))
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1000])
def test_deep_nesting_is_pt202_not_recursion_error(kind: str, depth: int) -> None:
    """Hostile nesting of any construct is refused with PT202, never a RecursionError."""
    text = DEEP[kind](depth)
    if len(text) > 4096:
        text = DEEP[kind](4096 // max(1, len(DEEP[kind](2)) - len(DEEP[kind](1))) - 2)
    with pytest.raises(ExprSyntaxError) as info:
        parse_expression(text)
    assert info.value.too_complex
    policy = POLICY.format(scalar=json.dumps(text)).replace("rules:", "params:\n  m: [1]\nrules:")
    with pytest.raises(PolicyError) as err:
        load_policy_text(policy, "deep.yaml")
    assert [d.code for d in err.value.diagnostics] == ["PT202"]


@pytest.mark.parametrize("kind", sorted(DEEP))
def test_nesting_within_limit_parses(kind: str) -> None:
    """Nesting well inside the limit parses (the limit does not refuse ordinary expressions)."""
    tree = parse_expression(DEEP[kind](20))
    assert _shape(parse_expression(s.unparse(tree))) == _shape(tree)


def test_overlong_expression_is_pt202() -> None:
    """An expression over the length limit is refused with PT202 before it is parsed."""
    with pytest.raises(ExprSyntaxError) as info:
        parse_expression("1 + " * 2000 + "1")
    assert info.value.too_complex
    assert "characters long" in info.value.message
