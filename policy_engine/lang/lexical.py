"""Lexical pieces both parsers share: the size limits and literal decoding.

Numbers are decoded (and shown, :func:`fmt`) exactly as a risk owner writes them (``1_500``, ``6%``
meaning 0.06 exactly as the decimal 0.06 rounds), strings with a small set
of escapes. The same decoder reads numeric constants in the YAML document.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ExprSyntaxError

MAX_EXPR_CHARS = 4096
MAX_DEPTH = 64


def parse_number(text: str) -> float:
    """A DSL or YAML number literal: ``1_500`` -> 1500.0, ``6%`` -> 0.06 (exactly as 0.06)."""
    raw = text.replace("_", "")
    percent = raw.endswith("%")
    if percent:
        raw = raw[:-1]
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"`{text}` is not a number") from None
    if percent:
        value = value / 100
    result = float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"`{text}` is not a finite number")
    return result


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def unquote(raw: str, start: int) -> str:
    """The value of a quoted string literal ``raw`` found at offset ``start``."""
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ExprSyntaxError(f"unknown escape `\\{nxt}` in string", start + 1 + i)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def fmt(value: Any) -> str:
    """A value as a risk owner writes it: 2 not 2.0, 0.06 not 6.000000000000001e-02."""
    cls = value.__class__  # the common cases first (explanations are on the hot path)
    if cls is float:
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(_on_grid(value))
    if cls is int:
        return str(value)
    if cls is str:
        return str(value)  # the same object
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(_on_grid(float(value)))
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _on_grid(value: float) -> float:
    """``value`` snapped to 6 decimals when it differs from them only by float noise:
    5400.059999999999 shows as 5400.06, 0.0612345678 stays as it is."""
    snapped = round(value, 6)
    if snapped != value and abs(snapped - value) <= 1e-9 * max(1.0, abs(value)):
        return snapped
    return value
