"""The named stages from a parsed document to a checked policy, run in order.

    (read -> parse: ``load_document``, ``parse_document``)
    budget -> schema -> api_version -> build -> check -> cost

As in OPA's compiler (``ast/compile.go``), :data:`STAGES` is the ordered list of
named stages, and :func:`check_document` runs them over one :class:`Compilation`
(what the stages hand on: the document, the model, the checked policy and every
diagnostic so far), stopping after the first stage that fails. Each stage reports
every problem it finds as positioned diagnostics. :func:`check_document` is the
entry point of the engine (which then compiles) and of the linter (which then
lints). A new stage is a function of a :class:`Compilation` and a line in
:data:`STAGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from .. import diagnostics as d
from ..diagnostics import Diagnostic, PolicyError, sort_diagnostics
from .budgets import cost_problem, size_problems
from .build import api_version_problems, build_spec
from .checker import CheckedPolicy, check
from .model import PolicySpec
from .onepass import expression_problems_despite_schema
from .schema import validate_schema
from .yaml_source import Document, load_document, parse_document


@dataclass
class Compilation:
    """What the stages hand on to each other."""

    doc: Document
    spec: PolicySpec | None = None
    checked: CheckedPolicy | None = None
    problems: list[Diagnostic] = field(default_factory=list)
    failed: bool = False

    def fail(self, problems: Iterable[Diagnostic]) -> None:
        """Stop after this stage, with ``problems`` added (sorted, like a PolicyError's)."""
        self.problems = sort_diagnostics([*self.problems, *problems])
        self.failed = True


class Stage(NamedTuple):
    name: str
    run: Callable[[Compilation], None]


def _budget(c: Compilation) -> None:
    """Sizes first: an oversized document is refused before anything walks it."""
    oversized = size_problems(c.doc.data, c.doc)
    if oversized:
        c.fail(oversized)


def _schema(c: Compilation) -> None:
    """JSON Schema. When every violation is a bad value (PT111), the expressions of the
    parts that validated are checked too, so that one run reports both."""
    problems = validate_schema(c.doc)
    if problems:
        c.fail(problems)
        if all(x.code == d.PT111 for x in problems):
            c.problems += expression_problems_despite_schema(c.doc)


def _api_version(c: Compilation) -> None:
    wrong = api_version_problems(c.doc)
    if wrong:
        c.fail(wrong)


def _build(c: Compilation) -> None:
    """The model: constants decoded, modes inherited, rules read, integrity compared."""
    c.spec, problems = build_spec(c.doc)
    if problems:
        c.fail(problems)


def _check(c: Compilation) -> None:
    """Names, types and contexts of every expression (warnings do not fail)."""
    assert c.spec is not None
    c.checked, c.problems = check(c.spec, c.doc)
    if c.checked is None:
        c.failed = True


def _cost(c: Compilation) -> None:
    """The evaluation budget of the checked expressions."""
    assert c.checked is not None
    too_costly = cost_problem(c.checked, c.doc)
    if too_costly is not None:
        c.fail([too_costly])


STAGES: tuple[Stage, ...] = (
    Stage("budget", _budget),
    Stage("schema", _schema),
    Stage("api_version", _api_version),
    Stage("build", _build),
    Stage("check", _check),
    Stage("cost", _cost),
)


def check_document(doc: Document) -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Run :data:`STAGES` over a parsed document: the checked policy (None on any error)
    and every diagnostic, warnings included."""
    c = Compilation(doc)
    for stage in STAGES:
        stage.run(c)
        if c.failed:
            return None, c.problems
    return c.checked, c.problems


def checked_policy(doc: Document) -> CheckedPolicy:
    """The checked policy of ``doc``; raises :class:`PolicyError` with every diagnostic."""
    checked, problems = check_document(doc)
    if checked is None:
        raise PolicyError(problems)
    return checked


__all__ = [
    "STAGES",
    "Compilation",
    "Stage",
    "check_document",
    "checked_policy",
    "load_document",
    "parse_document",
]
