"""Diagnostics for people, in the rustc manner: the source line, a caret under the span, help.

::

    error[PT301]: unknown name `strategy.max_trade`
     --> policies/portfolio.yaml:8:39
      |
    8 |     require: strategy.active_trades < strategy.max_trade
      |                                       ^^^^^^^^^^^^^^^^^^
      |
    help: did you mean `strategy.max_trades`?

The one-line form (``path:line:col: CODE message``) is :meth:`Diagnostic.format`;
``--format concise`` prints that, for editors and scripts. A diagnostic whose
line is not in the file (or whose file cannot be read as text) is rendered
without the snippet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from ..diagnostics import Diagnostic

Sources = Callable[[str], str | None]

# What a caret underlines, from the diagnostic's column: a quoted string, a dotted name or
# key, a number (with `%`), a two-character operator, or else one character.
_TOKEN = re.compile(
    r"\"(?:[^\"\\\n]|\\.)*\"?|'[^'\n]*'?|[A-Za-z_][\w.-]*|[0-9][0-9_.]*%*|==|!=|<=|>=|&&|\|\||\S"
)
_TAB = "    "
# Findings about the whole file: a caret under its first word would point at nothing.
_WHOLE_FILE = ("PT002", "PT499")


def render(diagnostic: Diagnostic, source: str | None) -> str:
    """One diagnostic with its snippet (when ``source``, the file's text, holds its line)."""
    span = diagnostic.span
    head = f"{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}"
    lines = source.splitlines() if source is not None else []
    whole = diagnostic.code in _WHOLE_FILE or (diagnostic.code == "PT103" and span.col == 1)
    if whole or not 1 <= span.line <= len(lines):
        out = [head, f" --> {span}"]
        if diagnostic.help:
            out.append(f"help: {diagnostic.help}")
        return "\n".join(out)
    pad = " " * len(str(span.line))
    text = lines[span.line - 1]
    col = max(1, min(span.col, len(text) + 1))
    shown = text.replace("\t", _TAB)
    indent = len(text[: col - 1].replace("\t", _TAB))
    width = _width(text, col, diagnostic)
    out = [
        head,
        f"{pad}--> {span}",
        f"{pad} |",
        f"{span.line} | {shown}".rstrip(),
        f"{pad} | {' ' * indent}{'^' * width}",
    ]
    if diagnostic.help:
        out += [f"{pad} |", f"help: {diagnostic.help}"]
    return "\n".join(out)


def _width(text: str, col: int, diagnostic: Diagnostic) -> int:
    span = diagnostic.span
    if span.end_line == span.line and span.end_col is not None and span.end_col > col:
        return span.end_col - col
    match = _TOKEN.match(text, col - 1)
    return len(match.group(0)) if match else 1


def render_all(diagnostics: Iterable[Diagnostic], sources: Sources) -> str:
    """Every diagnostic rendered, a blank line between them."""
    return "\n\n".join(render(x, sources(x.span.path)) for x in diagnostics)


def file_sources() -> Sources:
    """Reads (once) the file a diagnostic's path names; None for anything that is not text."""
    cache: dict[str, str | None] = {}

    def read(path: str) -> str | None:
        if path not in cache:
            try:
                raw = Path(path).read_bytes()
                cache[path] = None if b"\x00" in raw else raw.decode("utf-8-sig")
            except (OSError, UnicodeDecodeError):
                cache[path] = None
        return cache[path]

    return read


__all__ = ["Sources", "file_sources", "render", "render_all"]
