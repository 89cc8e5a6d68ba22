"""Positions: the engine's 1-based spans in code points -> LSP's 0-based ranges.

LSP counts columns in UTF-16 code units unless the client and server agree on
UTF-8 or UTF-32 (Neovim prefers UTF-8); the engine counts code points. Every
conversion goes through :class:`Lines`, so a policy with a `€` in a comment still
gets carets in the right place whatever the client speaks.
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
    encoding: str = "utf-16"  # the negotiated position encoding: utf-8, utf-16 or utf-32

    @classmethod
    def of(cls, text: str, encoding: str = "utf-16") -> Lines:
        return cls(tuple(text.split("\n")), encoding)

    def _width(self, ch: str) -> int:
        if self.encoding == "utf-32":
            return 1
        if self.encoding == "utf-8":
            return len(ch.encode("utf-8"))
        return 2 if ord(ch) > 0xFFFF else 1

    def line(self, index: int) -> str:
        return self.lines[index] if 0 <= index < len(self.lines) else ""

    def to_units(self, line: int, col: int) -> int:
        """Code-point column -> the client's units."""
        text = self.line(line)[:col]
        if text.isascii():
            return len(text)
        return sum(self._width(ch) for ch in text)

    def from_units(self, line: int, units: int) -> int:
        """The client's units -> code-point column."""
        text = self.line(line)
        if text.isascii():
            return min(units, len(text))
        count = 0
        for i, ch in enumerate(text):
            if count >= units:
                return i
            count += self._width(ch)
        return len(text)

    def position(self, line: int, col: int) -> lsp.Position:
        """A 0-based code-point position as an LSP position."""
        return lsp.Position(line=line, character=self.to_units(line, col))

    def range(self, line: int, col: int, end_line: int, end_col: int) -> lsp.Range:
        return lsp.Range(start=self.position(line, col), end=self.position(end_line, end_col))

    def cursor(self, position: lsp.Position) -> tuple[int, int]:
        """An LSP position as a 0-based (line, code-point column)."""
        return position.line, self.from_units(position.line, position.character)

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
