"""Locations, severities, diagnostics and the code registry.

Every problem the engine reports about a policy is a :class:`Diagnostic`:
a location, a stable code, a one-line message (lowercase, no trailing
period, user text in backticks) and, where we know the fix, a ``help`` text
(``did you mean `strategy.max_trades`?``). The one-line form puts the help
in parentheses after the message; the rustc-style rendering (``cli/render``)
gives it a line of its own. Codes never change meaning once released; the
registry below is the single place they are declared and documented.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True, slots=True)
class Span:
    """A position in a source file: 1-based line and column."""

    path: str
    line: int = 1
    col: int = 1
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    severity: Severity
    title: str


CODES: dict[str, CodeInfo] = {}


def _code(code: str, severity: Severity, title: str) -> str:
    CODES[code] = CodeInfo(code, severity, title)
    return code


E, W = Severity.ERROR, Severity.WARNING

# PT0xx: reading the file
PT001 = _code("PT001", E, "file cannot be read or is not UTF-8 text")
PT002 = _code("PT002", E, "file is larger than the size limit")
# PT1xx: YAML structure and schema
PT101 = _code("PT101", E, "YAML syntax error")
PT102 = _code("PT102", E, "duplicate key in a YAML mapping")
PT103 = _code("PT103", E, "document too large after alias expansion")
PT104 = _code("PT104", E, "document is empty, not a mapping, or has several documents")
PT105 = _code("PT105", E, "unsupported YAML tag or key type")
PT106 = _code("PT106", E, "a YAML 1.1 scalar that YAML 1.2 reads otherwise (on, 010, 1:30)")
PT111 = _code("PT111", E, "schema violation")
PT112 = _code("PT112", E, "unsupported `api_version`")
PT113 = _code("PT113", E, "content does not match the declared `integrity`")
PT116 = _code("PT116", E, "policy exceeds a size or evaluation-cost budget")
# PT2xx: expression syntax
PT201 = _code("PT201", E, "expression syntax error")
PT202 = _code("PT202", E, "expression too long or too deeply nested")
# PT3xx: names and types
PT301 = _code("PT301", E, "unknown name")
PT302 = _code("PT302", E, "type mismatch")
PT303 = _code("PT303", E, "`require`, `allow` or `when` is not boolean")
PT304 = _code("PT304", E, "`limit` or envelope value is not numeric")
PT305 = _code("PT305", E, "unknown function or wrong number of arguments")
PT306 = _code("PT306", E, "message placeholder names nothing")
PT307 = _code("PT307", E, "duplicate rule id")
PT308 = _code("PT308", E, "invalid constant value")
PT309 = _code("PT309", E, "reserved name used as a configuration key")
PT310 = _code("PT310", E, "name not available in this context")
PT311 = _code("PT311", E, "time zone depends on the host (not a canonical IANA zone)")
PT312 = _code("PT312", E, "window aggregates a quantity its events do not carry")
# PT4xx: domain lints (policy-check); see docs/codes.md
PT401 = _code("PT401", W, "rule can never fire")
PT402 = _code("PT402", E, "rule makes every later rule unreachable")
PT403 = _code("PT403", W, "rule identical to an earlier rule")
PT404 = _code("PT404", W, "param declared and never used")
PT405 = _code("PT405", E, "expression names a strategy the policy does not declare")
PT406 = _code("PT406", W, "declared strategy has no limit")
PT407 = _code("PT407", E, "drawdown tiers do not tighten")
PT408 = _code("PT408", E, "cap looser in a more severe mode")
PT409 = _code("PT409", W, "cohort cap below the cap of a member symbol")
PT410 = _code("PT410", E, "symbol listed in two cohorts")
PT411 = _code("PT411", W, "fraction-of-equity param written as a whole number")
PT412 = _code("PT412", W, "percentage above 100%")
PT413 = _code("PT413", E, "clip rule whose limit can never be positive")
PT414 = _code("PT414", W, "percentage written wrongly (`6 %`, `6%%`)")
PT415 = _code("PT415", W, "count compared with `<=` against its maximum")
PT416 = _code("PT416", W, "drawdown threshold written as a whole number")
PT417 = _code("PT417", W, "division by a live value that is zero on an empty book")
PT418 = _code("PT418", W, "rule rejects an ordinary intent on an empty book")
PT420 = _code("PT420", E, "content changed but `version` did not go up")
PT430 = _code("PT430", W, "window longer than the trading day")
PT431 = _code("PT431", W, "window, latch, input, scope or currency declared and never read")
PT432 = _code("PT432", E, "latch that can never clear (its `when` always holds)")
PT433 = _code("PT433", W, "latch that can never be set (its `when` never holds)")
PT434 = _code("PT434", W, "input with a null default read without `has()`")
PT435 = _code("PT435", W, "window compared with a bound that cannot matter")
PT436 = _code("PT436", W, "file not sealed while others in its folder are")
PT437 = _code("PT437", W, "clipping limit that decides only cancels (a cancel is all or nothing)")
PT438 = _code("PT438", W, "rule of cancels or modifies reads what a request never carries")
PT499 = _code("PT499", E, "internal error while checking")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    severity: Severity = field(default=Severity.ERROR)
    help: str | None = None  # the fix, where we know it

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.path, self.span.line, self.span.col, self.code, self.message)

    @property
    def text(self) -> str:
        """The message with its help, on one line: ``unknown name `x` (did you mean `y`?)``."""
        return f"{self.message} ({self.help})" if self.help else self.message

    def format(self) -> str:
        """The concise form: ``path:line:col: CODE message (help)``."""
        return f"{self.span}: {self.code} {self.text}"

    def __str__(self) -> str:
        return self.format()


def diagnostic(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """Build a diagnostic with the severity its code is registered with."""
    return Diagnostic(code, message, span, CODES[code].severity, help)


def suggest(word: str, options: Iterable[str]) -> str | None:
    """``did you mean `X`?`` for the closest of ``options`` (a diagnostic's help), or None."""
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diagnostics), key=lambda d: d.sort_key)


class PolicyEngineError(Exception):
    """The root of every exception policy-engine raises on purpose: ``except
    PolicyEngineError`` catches a bad policy, bad input, an evaluation or a journal problem,
    and nothing else (a bug still surfaces as what it is)."""


class PolicyError(PolicyEngineError):
    """A policy could not be loaded. Carries every diagnostic, sorted."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sort_diagnostics(diagnostics))
        lines = [d.format() for d in self.diagnostics]
        super().__init__("\n".join(lines) if lines else "policy error")

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)
