"""The canonical layout of a policy file (``policy fmt``), comments kept.

PyYAML drops comments, and a formatter that drops a risk owner's comments is
worse than none, so the layout goes through ruamel.yaml's round-trip mode
(a well-kept library that keeps comments, key order, flow or block style and
the spelling of every scalar): two-space mappings, list items indented two
under their key, one space after a key's colon, no line wrapping. Every
expression (a rule's ``require``/``limit``/``allow``/``when``, a mode's
``when``, an envelope value) is printed from its AST with canonical spacing
and only the parentheses precedence needs, each number and string kept as
written (``6%`` stays ``6%``, ``1_500`` stays ``1_500``). Block scalars
(``|``, ``>``) are left as written: their line breaks are the author's.

:func:`same_meaning` is the safety net: the formatted text must read to the
same data, expressions compared by their AST, or nothing is written.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from ..diagnostics import PolicyEngineError, PolicyError
from ..lang import syntax as s
from ..lang.errors import ExprSyntaxError
from ..lang.parser import parse_expression
from .yaml_source import parse_document

RULE_EXPRESSIONS = ("require", "limit", "allow", "when")
API_PREFIX = "policy-engine/"


class FormatError(PolicyEngineError, ValueError):
    """The text cannot be formatted (not YAML, not a policy, or the result would differ)."""


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 100_000  # never wrap: a wrapped expression is harder to review
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def is_policy(data: Any) -> bool:
    """A policy file says so at the top: ``api_version: policy-engine/...``."""
    return isinstance(data, dict) and str(data.get("api_version", "")).startswith(API_PREFIX)


def expression_slots(data: Any) -> Iterator[tuple[Any, Any]]:
    """``(container, key)`` of every expression scalar of a policy document."""
    if not isinstance(data, dict):
        return
    for rule in data.get("rules") or []:
        if isinstance(rule, dict):
            yield from ((rule, k) for k in RULE_EXPRESSIONS if k in rule)
    for section in ("modes", "latches"):
        entries = data.get(section)
        if isinstance(entries, dict):
            for entry in entries.values():
                if isinstance(entry, dict) and "when" in entry:
                    yield entry, "when"
    envelope = data.get("envelope")
    if isinstance(envelope, dict):
        yield from ((envelope, k) for k in envelope)


def canonical_expression(text: str) -> str:
    """The expression with canonical spacing and parentheses, literals as written; the text
    itself if it does not parse (the checker reports that)."""
    try:
        return s.unparse(parse_expression(text), text)
    except ExprSyntaxError:
        return text


def format_policy(text: str) -> str:
    """The canonical layout of policy ``text``. Raises :class:`FormatError`."""
    y = _yaml()
    try:
        data = y.load(text)
    except YAMLError as exc:
        raise FormatError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, CommentedMap) or not is_policy(data):
        raise FormatError("not a policy file (no `api_version: policy-engine/...`)")
    for container, key in expression_slots(data):
        value = container[key]
        if not isinstance(value, str) or isinstance(
            value, LiteralScalarString | FoldedScalarString
        ):
            continue
        pretty = canonical_expression(str(value))
        if pretty == value:
            continue
        if isinstance(value, DoubleQuotedScalarString):
            container[key] = DoubleQuotedScalarString(pretty)
        elif isinstance(value, SingleQuotedScalarString):
            container[key] = SingleQuotedScalarString(pretty)
        else:
            container[key] = pretty
    out = io.StringIO()
    y.dump(data, out)
    formatted = out.getvalue()
    if not same_meaning(text, formatted):
        raise FormatError("formatting would change what the file says; it is left as it is")
    return formatted


def _meaning(text: str) -> Any:
    try:
        doc = parse_document(text.encode("utf-8"), "<fmt>")
    except PolicyError as exc:
        return ("unreadable", tuple(x.text for x in exc.diagnostics))
    data = doc.data
    for container, key in list(expression_slots(data)):
        if isinstance(container[key], str):
            container[key] = ("expression", canonical_expression(container[key]))
    return data


def same_meaning(old: str, new: str) -> bool:
    """Whether ``new`` reads (with the loader policies load with) to the same data as
    ``old``, expressions compared by their canonical form."""
    return bool(_meaning(old) == _meaning(new))


__all__ = [
    "FormatError",
    "canonical_expression",
    "expression_slots",
    "format_policy",
    "is_policy",
    "same_meaning",
]
