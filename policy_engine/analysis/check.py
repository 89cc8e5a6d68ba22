"""Checking whole files: the runtime's own validation, compilation, then every lint.

``policy-check`` calls :func:`check_file` per file; whatever ``load_policy``
would refuse is reported here too, so nothing it passes fails at runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import diagnostics as d
from ..diagnostics import Diagnostic, PolicyError, Span
from ..document.checker import CheckedPolicy
from ..document.stages import check_document
from ..document.yaml_source import Document, load_document, parse_document
from ..engine.policy import Policy
from .lints import lint, lint_document


@dataclass
class Result:
    """What checking one file found."""

    path: str
    diagnostics: list[Diagnostic]
    checked: CheckedPolicy | None = None
    doc: Document | None = None
    rule_count: int | None = None  # set when the checked policy stayed in a worker process

    @property
    def rules(self) -> int:
        if self.rule_count is not None:
            return self.rule_count
        return len(self.checked.rules) if self.checked is not None else 0


def check_source(doc: Document) -> Result:
    """The runtime's own validation (:func:`check_document`), then the lints."""
    try:
        checked, problems = check_document(doc)
    except RecursionError:
        span = Span(doc.path)
        return Result(doc.path, [d.diagnostic(d.PT202, "policy nests too deeply", span)], doc=doc)
    diagnostics = [*problems, *lint_document(doc)]
    if checked is not None:
        try:  # `load_policy` compiles too: whatever it would refuse, say so here
            Policy(checked)
        except Exception as exc:
            message = (
                f"the policy passes every check but does not compile: {type(exc).__name__}: {exc}"
            )
            diagnostics.append(d.diagnostic(d.PT499, message, Span(doc.path)))
        diagnostics += lint(checked, doc)
    return Result(doc.path, d.sort_diagnostics(diagnostics), checked, doc)


def check_file(path: str, display: str | None = None) -> Result:
    """Load and check one policy file; every problem becomes a diagnostic."""
    shown = display if display is not None else path
    try:
        doc = load_document(path, shown)
    except PolicyError as exc:
        return Result(shown, list(exc.diagnostics))
    return check_source(doc)


def check_bytes(raw: bytes, display: str) -> Result:
    try:
        doc = parse_document(raw, display)
    except PolicyError as exc:
        return Result(display, list(exc.diagnostics))
    return check_source(doc)
