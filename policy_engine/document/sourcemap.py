"""What the checker and the linter need to know about where things are written.

A small protocol (as cel-go's checker depends only on a ``Source``): the
location of a key or value by its YAML path, and of an offset inside an
expression scalar. :class:`~.yaml_source.Document` implements it; anything
else that can say where an expression came from (a test, an editor buffer)
can too.
"""

from __future__ import annotations

from typing import Protocol

from ..diagnostics import Span
from .model import YamlPath


class SourceMap(Protocol):
    """Positions of the keys, values and expression offsets of one policy source."""

    @property
    def path(self) -> str:
        """The file name diagnostics carry."""
        ...

    def span(self, path: YamlPath, *, key: bool = False) -> Span:
        """Where the value (or key) at ``path`` starts; the nearest parent if it has none."""
        ...

    def expr_span(self, path: YamlPath, offset: int) -> Span:
        """Where character ``offset`` of the expression at ``path`` is written."""
        ...
