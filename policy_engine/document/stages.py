"""The named stages from policy bytes to a checked policy, as a compiler has them.

    read -> parse (YAML with positions) -> budget (sizes) -> validate (JSON Schema)
         -> build (model, integrity) -> check (names, types, contexts) -> cost (budget)

Each stage reports every problem it finds as positioned diagnostics; a stage
runs only when the one before it succeeded. :func:`check_document` is the
entry point of the engine (which then compiles) and of the linter (which
then lints).
"""

from __future__ import annotations

from .. import diagnostics as d
from ..diagnostics import Diagnostic, PolicyError, sort_diagnostics
from .budgets import cost_problem
from .build import build_spec
from .checker import CheckedPolicy, check
from .onepass import expression_problems_despite_schema
from .yaml_source import Document, load_document, parse_document

STAGES = ("read", "parse", "budget", "validate", "build", "check", "cost")


def check_document(doc: Document) -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Validate, build and check a parsed document: the checked policy (None on any
    error) and every diagnostic, warnings included. When the schema fails, the
    expressions of the parts that validated are checked too (one pass reports both)."""
    try:
        spec = build_spec(doc)
    except PolicyError as exc:
        if all(x.code == d.PT111 for x in exc.diagnostics):
            return None, [*exc.diagnostics, *expression_problems_despite_schema(doc)]
        return None, list(exc.diagnostics)
    checked, problems = check(spec, doc)
    if checked is not None:
        too_costly = cost_problem(checked, doc)
        if too_costly is not None:
            return None, sort_diagnostics([*problems, too_costly])
    return checked, problems


def checked_policy(doc: Document) -> CheckedPolicy:
    """The checked policy of ``doc``; raises :class:`PolicyError` with every diagnostic."""
    checked, problems = check_document(doc)
    if checked is None:
        raise PolicyError(problems)
    return checked


__all__ = ["STAGES", "check_document", "checked_policy", "load_document", "parse_document"]
