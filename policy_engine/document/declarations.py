"""The checks of what a policy declares besides its rules: inputs, scopes, windows.

Each declaration introduces names (``intent.venue``, the ``venue.`` namespace);
these checks make sure a new name does not shadow a built-in one, that a scope is
keyed by a string field of the intent, and that nothing configures a name the
engine computes. Problems are positioned at the declaration, with a suggestion
where one is known.
"""

from __future__ import annotations

from dataclasses import replace

from .. import diagnostics as d
from ..diagnostics import Diagnostic, suggest
from .model import PolicySpec
from .names import (
    INTENT_FIELDS,
    RESERVED_KEYS,
    RESERVED_NAMESPACES,
    SCOPE_KEYS,
    WINDOW_NAMESPACES,
    Scope,
    input_reserved,
)
from .sourcemap import SourceMap


def declaration_problems(spec: PolicySpec, doc: SourceMap) -> list[Diagnostic]:
    """Every problem of the policy's inputs, scopes and windows."""
    return [*_inputs(spec, doc), *_scopes(spec, doc), *_windows(spec, doc), *_locks(spec, doc)]


def _locks(spec: PolicySpec, doc: SourceMap) -> list[Diagnostic]:
    """A lock is triggered by a declared window."""
    out = []
    for lock in spec.locks.values():
        if lock.window not in spec.windows:
            message = f"unknown window `{lock.window}` in lock `{lock.name}`"
            hint = suggest(lock.window, list(spec.windows))
            span = doc.span(("locks", lock.name, "window"))
            out.append(d.diagnostic(d.PT301, message, span, hint))
        elif spec.windows[lock.window].aggregate is not None:  # a lock fires on a count
            message = f"lock `{lock.name}` needs a counting window, `{lock.window}` aggregates"
            span = doc.span(("locks", lock.name, "window"))
            out.append(d.diagnostic(d.PT111, message, span))
    return out


def _inputs(spec: PolicySpec, doc: SourceMap) -> list[Diagnostic]:
    out = []
    for name in spec.inputs:
        if input_reserved(name):
            where = doc.span(("inputs", name), key=True)
            message = f"`intent.{name}` is built in and cannot be declared as an input"
            out.append(d.diagnostic(d.PT309, message, where))
    return out


def _scopes(spec: PolicySpec, doc: SourceMap) -> list[Diagnostic]:
    """A scope takes a name of its own, is keyed by a string field of the intent, and
    configures no live or built-in name."""
    out = []
    strings = {*SCOPE_KEYS, "side", *(n for n, i in spec.inputs.items() if i.type == "string")}
    for scope in spec.scopes.values():
        where = ("scopes", scope.name)
        if scope.name in RESERVED_NAMESPACES:
            message = f"`{scope.name}` is a built-in namespace and cannot name a scope"
            out.append(d.diagnostic(d.PT309, message, doc.span(where, key=True)))
        for n, key_field in enumerate(scope.key_fields):
            if key_field in strings:
                continue
            known = {*INTENT_FIELDS, *spec.inputs}
            if key_field in known:
                code, hint = d.PT302, None
                message = (
                    f"a scope is keyed by a string field of the intent, not `intent.{key_field}`"
                )
            else:
                code = d.PT301
                message = f"unknown name `intent.{key_field}`"
                hint = suggest(f"intent.{key_field}", [f"intent.{k}" for k in strings])
            at = (*where, "key") if len(scope.key_fields) == 1 else (*where, "key", n)
            out.append(d.diagnostic(code, message, doc.span(at), hint))
        for value, cfg in scope.values.items():
            for key in cfg:
                if key in RESERVED_KEYS:
                    message = (
                        f"`{key}` is a live counter or built-in name and cannot be "
                        f"configured in scopes"
                    )
                    span = doc.span((*where, "values", value, key), key=True)
                    out.append(d.diagnostic(d.PT309, message, span))
    return out


def _windows(spec: PolicySpec, doc: SourceMap) -> list[Diagnostic]:
    """A window is counted per a namespace that exists, under a name not already taken
    there."""
    out = []
    scope = Scope.of(replace(spec, windows={}))
    namespaces = [*WINDOW_NAMESPACES, *spec.scopes]
    for window in spec.windows.values():
        where = ("windows", window.name)
        if window.per not in namespaces:
            message = (
                f"unknown name `{window.per}` in `per` (portfolio, strategy, symbol, cohort "
                f"or a scope)"
            )
            hint = suggest(window.per, namespaces)
            out.append(d.diagnostic(d.PT301, message, doc.span((*where, "per")), hint))
        elif window.name in scope.fields(window.per) or window.name in RESERVED_KEYS:
            message = (
                f"`{window.per}.{window.name}` is already a name of `{window.per}`: "
                f"the window needs another name"
            )
            out.append(d.diagnostic(d.PT309, message, doc.span(where, key=True)))
    return out


__all__ = ["declaration_problems"]
