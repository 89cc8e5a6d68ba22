"""Every domain lint, in the order they run, and :func:`lint` which runs them all.

The checker proves a policy *can* run; these lints ask whether it does what
its author meant (codes PT401..PT418 and PT430..PT435, registered in
:mod:`policy_engine.diagnostics`). To add a lint: write a function of a
:class:`~.linter.Linter` in the module of its family, register its code, add
it to :data:`LINTS`, and give it a golden file in ``tests/golden/lint/``.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import diagnostics as d
from ..diagnostics import Diagnostic, Span
from ..document.checker import CheckedPolicy
from ..document.yaml_source import Document
from .cap_lints import (
    lint_clip_never_positive,
    lint_cohort_caps,
    lint_cohort_overlap,
    lint_equity_fraction,
    lint_percentages,
)
from .declaration_lints import (
    lint_inputs_without_has,
    lint_latch_conditions,
    lint_long_windows,
    lint_unread_declarations,
    lint_window_bounds,
)
from .linter import Linter
from .mode_lints import lint_mode_caps, lint_tiers
from .rule_lints import (
    lint_clip_on_cancel,
    lint_identical,
    lint_never_fires,
    lint_request_reads,
    lint_strategy_limits,
    lint_undeclared_strategy,
    lint_unreachable,
    lint_unused_params,
)
from .slip_lints import (
    lint_count_at_most,
    lint_divide_by_live,
    lint_document_percentages,
    lint_drawdown_whole_number,
    lint_rejects_on_empty_book,
)

LINTS: tuple[Callable[[Linter], None], ...] = (
    lint_never_fires,
    lint_unreachable,
    lint_identical,
    lint_clip_on_cancel,
    lint_request_reads,
    lint_unused_params,
    lint_undeclared_strategy,
    lint_strategy_limits,
    lint_tiers,
    lint_mode_caps,
    lint_cohort_caps,
    lint_cohort_overlap,
    lint_equity_fraction,
    lint_percentages,
    lint_clip_never_positive,
    lint_count_at_most,
    lint_drawdown_whole_number,
    lint_divide_by_live,
    lint_rejects_on_empty_book,
    lint_long_windows,
    lint_unread_declarations,
    lint_latch_conditions,
    lint_inputs_without_has,
    lint_window_bounds,
)


def lint(checked: CheckedPolicy, doc: Document) -> list[Diagnostic]:
    """Every domain lint over a policy the checker accepted. Never raises."""
    out: list[Diagnostic] = []
    for fn in LINTS:
        ln = Linter(checked, doc)
        try:
            fn(ln)
        except Exception as exc:  # a lint bug must not hide the other findings
            name = fn.__name__.removeprefix("lint_")
            message = f"lint `{name}` failed: {type(exc).__name__}: {exc}"
            out.append(d.diagnostic(d.PT499, message, Span(doc.path)))
            continue
        out.extend(ln.out)
    return d.sort_diagnostics(out)


def lint_document(doc: Document) -> list[Diagnostic]:
    """The lints that read only the document (PT414): they run even when the policy does not
    check, so a slip is reported where it is written. Never raises."""
    try:
        return lint_document_percentages(doc)
    except Exception as exc:  # a lint bug must not hide the other findings
        message = f"lint `document_percentages` failed: {type(exc).__name__}: {exc}"
        return [d.diagnostic(d.PT499, message, Span(doc.path))]
