"""Diagnostics as LSP sees them, the fixes offered for them, and formatting edits.

A diagnostic keeps the checker's code, severity, message and ``help:``; a did-you-mean
help becomes a quick fix that replaces exactly the misspelt word. Formatting is
``policy fmt``'s :func:`~policy_engine.document.formatter.format_policy`, applied as
edits that yield its output byte for byte.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from lsprotocol import types as lsp

from .. import diagnostics as d
from ..diagnostics import Diagnostic, Severity
from ..document.build import SEAL_HEADER, integrity_block
from ..document.formatter import FormatError, format_policy
from .index import Analysis
from .text import Lines

SOURCE = "policy-check"
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_QUOTED = re.compile(r"`([^`]+)`")


def to_lsp(a: Analysis, found: list[Diagnostic], codes_url: str | None) -> list[lsp.Diagnostic]:
    """The checker's diagnostics of this buffer as LSP diagnostics (0-based ranges)."""
    out = []
    for x in found:
        if x.span.path != a.path:
            continue
        where = a.lines.span_range(x.span)
        data: dict[str, Any] | None = None
        fix = _DID_YOU_MEAN.search(x.help or "")
        if fix is not None:
            word = _misspelt(a.lines, x)
            if word is not None:
                where, data = word, {"replace": fix.group(1)}
        message = f"{x.message}\nhelp: {x.help}" if x.help else x.message
        out.append(
            lsp.Diagnostic(
                range=where,
                message=message,
                severity=lsp.DiagnosticSeverity.Error
                if x.severity is Severity.ERROR
                else lsp.DiagnosticSeverity.Warning,
                code=x.code,
                code_description=lsp.CodeDescription(href=f"{codes_url}#{x.code.lower()}")
                if codes_url
                else None,
                source=SOURCE,
                data=data,
            )
        )
    return out


def _misspelt(lines: Lines, x: Diagnostic) -> lsp.Range | None:
    """The range of the word a did-you-mean fix replaces: the first word the message quotes
    that is written where the diagnostic points (a quote's width after it at most)."""
    line, col = x.span.line - 1, x.span.col - 1
    text = lines.line(line)
    for m in _QUOTED.finditer(x.message):
        word = m.group(1)
        for start in (col, col + 1):
            if text[start : start + len(word)] == word:
                return lines.range(line, start, line, start + len(word))
        # `unknown key `x` in `params.m``: the key is written after the name it indexes
        at = text.find(word, col)
        if at != -1 and m.start() > 0 and "key" in x.message:
            return lines.range(line, at, line, at + len(word))
    return None


def code_actions(a: Analysis, uri: str, context: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    """Quick fixes for the diagnostics in ``context``, and the integrity block."""
    out: list[lsp.CodeAction] = []
    for diag in context:
        replace = diag.data.get("replace") if isinstance(diag.data, dict) else None
        if isinstance(replace, str):
            out.append(_fix(f"Replace with `{replace}`", uri, diag, [(diag.range, replace)]))
        if diag.code == d.PT420:
            bumped = _bump_version(a)
            if bumped is not None:
                out.append(_fix("Bump version", uri, diag, [bumped]))
    if a.doc is not None and not a.is_test_file and isinstance(a.data.get("rules"), list):
        out += _integrity_actions(a, uri)
    return out


def _fix(
    title: str, uri: str, diag: lsp.Diagnostic | None, edits: list[tuple[lsp.Range, str]]
) -> lsp.CodeAction:
    return lsp.CodeAction(
        title=title,
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[diag] if diag is not None else None,
        is_preferred=diag is not None,
        edit=lsp.WorkspaceEdit(
            changes={uri: [lsp.TextEdit(range=r, new_text=t) for r, t in edits]}
        ),
    )


def _bump_version(a: Analysis) -> tuple[lsp.Range, str] | None:
    assert a.doc is not None
    node = a.doc.values.get(("version",))
    version = a.data.get("version")
    if node is None or not isinstance(version, int) or isinstance(version, bool):
        return None
    start, end = node.start_mark, node.end_mark
    return a.lines.range(start.line, start.column, end.line, end.column), str(version + 1)


def _integrity_actions(a: Analysis, uri: str) -> list[lsp.CodeAction]:
    """Insert the `integrity` block at the top, right after the header (where the loader
    wants it: a truncation cannot remove it), or bring a stale one up to date."""
    assert a.doc is not None
    block = integrity_block(a.data)
    key = a.doc.keys.get(("integrity",))
    if key is None:
        header = [a.doc.values[(k,)] for k in SEAL_HEADER if (k,) in a.doc.values]
        tail = max(header, key=lambda node: node.end_mark.index, default=None)
        line = 0 if tail is None else tail.end_mark.line + (tail.end_mark.column > 0)
        if line < len(a.lines.lines):
            at, lead = a.lines.position(line, 0), ""
        else:  # the header ends the file (no newline after it)
            at, lead = a.lines.end(), ("" if a.text.endswith("\n") or not a.text else "\n")
        where = lsp.Range(start=at, end=at)
        action = _fix("Insert integrity block", uri, None, [(where, lead + block)])
        action.kind = lsp.CodeActionKind.Source
        return [action]
    value = a.doc.values[("integrity",)]
    current = a.text[key.start_mark.index : value.end_mark.index].rstrip("\n") + "\n"
    if current == block:
        return []
    first, last = key.start_mark, value.end_mark
    where = a.lines.range(first.line, first.column, last.line, last.column)
    new_text = block if last.column == 0 else block.rstrip("\n")
    action = _fix("Update integrity block", uri, None, [(where, new_text)])
    action.kind = lsp.CodeActionKind.QuickFix
    return [action]


# --- formatting -------------------------------------------------------------------------------
def formatted(text: str) -> str | None:
    """What ``policy fmt`` writes for ``text``; None when it cannot be formatted (not YAML,
    not a policy)."""
    try:
        return format_policy(text)
    except FormatError:
        return None


def formatting(
    a: Analysis, formatted: str | None, limit: lsp.Range | None = None
) -> list[lsp.TextEdit] | None:
    """Edits that turn the buffer into ``formatted`` (only the changes that touch ``limit``
    when given); None when the buffer cannot be formatted."""
    if formatted is None:
        return None
    if formatted == a.text:
        return []
    if limit is None:
        whole = lsp.Range(start=lsp.Position(line=0, character=0), end=a.lines.end())
        return [lsp.TextEdit(range=whole, new_text=formatted)]
    old = a.text.splitlines(keepends=True)
    new = formatted.splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or i2 < limit.start.line or i1 > limit.end.line:
            continue
        where = lsp.Range(
            start=lsp.Position(line=i1, character=0), end=lsp.Position(line=i2, character=0)
        )
        edits.append(lsp.TextEdit(range=where, new_text="".join(new[j1:j2])))
    return edits


__all__ = ["SOURCE", "code_actions", "formatted", "formatting", "to_lsp"]
