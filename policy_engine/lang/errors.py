"""The two errors of the expression language: a syntax error and an evaluation error.

:class:`ExprSyntaxError` is raised by the parsers (with an offset into the
expression text, which the document layer maps back into the YAML file);
:class:`EvalError` is raised while evaluating (by the interpreter and by the
function implementations) and always turns into a fail-closed rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..diagnostics import PolicyEngineError


@dataclass(eq=False)  # not frozen: raising machinery sets __traceback__
class ExprSyntaxError(PolicyEngineError):
    """A problem in the expression text at ``offset`` (0-based); ``help`` says how to
    fix it where a common slip explains it (``=`` for ``==``, ``&&`` for ``and``)."""

    message: str
    offset: int
    too_complex: bool = False
    help: str | None = None


class EvalErrorKind(StrEnum):
    """Why an evaluation failed; each is documented in docs/policy-format.md (Evaluation)."""

    UNDECLARED = "unknown"  # a strategy, symbol, cohort, scope value or mode not declared
    MISSING_KEY = "missing_key"
    MISSING_INPUT = "missing_input"
    NO_SCOPE = "no_scope"
    NULL_VALUE = "null_value"
    TYPE_ERROR = "type_error"
    DIVISION_BY_ZERO = "division_by_zero"
    NOT_FINITE = "not_finite"
    INTERNAL = "internal"


# The kinds that mean "a value is missing" (not "the policy is wrong"): a rule with
# `when_missing: approve` lets the intent pass on these and fails closed on every other.
MISSING_KINDS = frozenset(
    {EvalErrorKind.NULL_VALUE, EvalErrorKind.MISSING_INPUT, EvalErrorKind.NO_SCOPE}
)


class EvalError(PolicyEngineError):
    """An evaluation problem; the decision fails closed with ``code`` and ``detail``.

    ``at`` names where it happened (a rule id or ``modes.<name>``) once known;
    ``namespace`` what was not declared, for :attr:`EvalErrorKind.UNDECLARED`.
    """

    def __init__(
        self,
        kind: EvalErrorKind,
        detail: str,
        at: str | None = None,
        *,
        namespace: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.at = at
        self.namespace = namespace

    @property
    def code(self) -> str:
        """What a decision's context shows as ``error``: the kind's value, or
        ``unknown_<namespace>`` (``unknown_strategy``, ``unknown_venue``) for an undeclared one."""
        if self.kind is EvalErrorKind.UNDECLARED:
            return f"{self.kind.value}_{self.namespace}"
        return self.kind.value
