"""Schema errors and expression errors in one pass, where the file allows it.

A policy that fails the schema has no model, so the checker never saw its
expressions: a user fixed one schema error and then met four expression
errors. After a schema failure this module checks what it still can: the
rules (and modes and envelope values) whose own keys validated, against the
parts of the file that validated. A rule that reads a name whose definition
failed the schema (a param, a strategy's configuration, a mode key) is left
for the next run: checking it against a broken definition would report
problems that are not there.
"""

from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Diagnostic
from ..lang import syntax as s
from ..lang.errors import ExprSyntaxError
from ..lang.parser import parse_expression
from .build import build_spec
from .checker import check
from .model import ExprSource, RuleSpec, YamlPath
from .names import INTENT_DERIVED, INTENT_FIELDS, LIVE_FIELDS, MODE_FIELDS
from .schema import schema_error_paths
from .yaml_source import Document

# Where a namespace's configuration is declared; names built into it never depend on that.
_DECLARED_IN = {
    "params": "params",
    "strategy": "strategies",
    "symbol": "symbols",
    "cohort": "cohorts",
    "mode": "modes",
    "intent": "inputs",
}
_BUILT_IN = {"name", "symbols", *LIVE_FIELDS, *MODE_FIELDS, *INTENT_FIELDS, *INTENT_DERIVED}


def expression_problems_despite_schema(doc: Document) -> list[Diagnostic]:
    """The expression diagnostics of every part of ``doc`` that validated, after the schema
    failed elsewhere (nothing if the schema passes or nothing else can be checked)."""
    bad = schema_error_paths(doc)
    if not bad:
        return []
    spec, problems = build_spec(doc, bad)
    broken = _broken_definitions(bad)
    rules = tuple(r for r in spec.rules if not any(_reads(src, broken) for src in _sources(r)))
    modes_ok = ("mode",) not in broken and not any(
        m.when is not None and _reads(m.when, broken) for m in spec.modes.values()
    )
    trusted = replace(
        spec,
        rules=rules,
        modes=spec.modes if modes_ok else {"normal": spec.modes["normal"]},
        envelope={k: v for k, v in spec.envelope.items() if not _reads(v, broken)},
    )
    _checked, found = check(trusted, doc)
    return problems + found


def _broken_definitions(bad: list[YamlPath]) -> set[tuple[str, ...]]:
    """Name prefixes whose definition failed: (`params`, `cap`) or the whole `(strategy,)`."""
    out: set[tuple[str, ...]] = set()
    for namespace, section in _DECLARED_IN.items():
        for path in bad:
            if not path or path[0] != section:
                continue
            if namespace in ("params", "intent") and len(path) > 1:
                out.add((namespace, str(path[1])))
            else:
                out.add((namespace,))
    return out


def _sources(rule: RuleSpec) -> list[ExprSource]:
    return [src for src in (rule.expr, rule.when, rule.message) if src is not None]


def _reads(src: ExprSource, broken: set[tuple[str, ...]]) -> bool:
    """Whether ``src`` reads a name whose definition failed (a message's placeholders too)."""
    if not broken:
        return False
    text = src.text
    placeholders = [p.split("}")[0] for p in text.split("{")[1:]]
    pieces = placeholders if src.path[-1] == "message" else [text]
    for piece in pieces:
        try:
            node = parse_expression(piece)
        except ExprSyntaxError:
            continue  # its syntax error is reported whatever it reads
        for name in (n for n in s.walk(node) if isinstance(n, s.Name)):
            path = name.path
            if (path[0],) in broken and path[1:2] and path[1] not in _BUILT_IN:
                return True
            if path[:2] in broken or (path[0] == "params" and (path[0],) in broken):
                return True
    return False
