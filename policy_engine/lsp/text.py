"""Positions: the engine's 1-based spans in code points -> LSP's 0-based ranges.

LSP counts columns in UTF-16 code units unless the client agrees otherwise; the
engine counts code points. Every conversion goes through :class:`Lines`, so a
policy with a `€` in a comment still gets carets in the right place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types as lsp

from ..diagnostics import Span

# What a caret under a diagnostic covers: a dotted name, a number or percentage, a quoted
# string, or else one character.
_TOKEN = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_]\w*)*|[0-9][\w.]*%?|\"[^\"\n]*\"|'[^'\n]*'|\S")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class Lines:
    """A buffer's lines, with conversions between code points and UTF-16 units."""

    lines: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Lines:
        return cls(tuple(text.split("\n")))

    def line(self, index: int) -> str:
        return self.lines[index] if 0 <= index < len(self.lines) else ""

    def to_utf16(self, line: int, col: int) -> int:
        text = self.line(line)[:col]
        if text.isascii():
            return len(text)
        return len(text.encode("utf-16-le")) // 2

    def from_utf16(self, line: int, units: int) -> int:
        text = self.line(line)
        if text.isascii():
            return min(units, len(text))
        count = 0
        for i, ch in enumerate(text):
            if count >= units:
                return i
            count += 2 if ord(ch) > 0xFFFF else 1
        return len(text)

    def position(self, line: int, col: int) -> lsp.Position:
        """A 0-based code-point position as an LSP position."""
        return lsp.Position(line=line, character=self.to_utf16(line, col))

    def range(self, line: int, col: int, end_line: int, end_col: int) -> lsp.Range:
        return lsp.Range(start=self.position(line, col), end=self.position(end_line, end_col))

    def cursor(self, position: lsp.Position) -> tuple[int, int]:
        """An LSP position as a 0-based (line, code-point column)."""
        return position.line, self.from_utf16(position.line, position.character)

    def span_range(self, span: Span) -> lsp.Range:
        """The range a diagnostic's span covers: its own end when it has one, else the token
        that starts there (a name, a number, a quoted string)."""
        line, col = max(span.line - 1, 0), max(span.col - 1, 0)
        if span.end_line is not None and span.end_col is not None:
            return self.range(line, col, span.end_line - 1, span.end_col - 1)
        text = self.line(line)
        found = _TOKEN.match(text, col) if col < len(text) else None
        end = found.end() if found else col
        return self.range(line, col, line, end)

    def dotted_at(self, line: int, col: int) -> tuple[str, int, int] | None:
        """The dotted name under (line, col): its text, start and end column."""
        for m in _DOTTED.finditer(self.line(line)):
            if m.start() <= col <= m.end():
                return m.group(0), m.start(), m.end()
        return None

    def end(self) -> lsp.Position:
        """The position just past the last character."""
        last = len(self.lines) - 1
        return self.position(last, len(self.lines[last]))


__all__ = ["Lines"]
