"""The two errors of the expression language: a syntax error and an evaluation error.

:class:`ExprSyntaxError` is raised by the parsers (with an offset into the
expression text, which the document layer maps back into the YAML file);
:class:`EvalError` is raised while evaluating (by the interpreter and by the
function implementations) and always turns into a fail-closed rejection.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)  # not frozen: raising machinery sets __traceback__
class ExprSyntaxError(Exception):
    """A problem in the expression text at ``offset`` (0-based); ``help`` says how to
    fix it where a common slip explains it (``=`` for ``==``, ``&&`` for ``and``)."""

    message: str
    offset: int
    too_complex: bool = False
    help: str | None = None


class EvalError(Exception):
    """An evaluation problem; the decision fails closed with ``kind`` and ``detail``.

    ``at`` names where it happened (a rule id or ``modes.<name>``) once known.
    """

    def __init__(self, kind: str, detail: str, at: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.at = at
