"""The timed declarations of a policy as specs: rolling windows (``windows:``) and timed
locks (``locks:``), with the checks that need nothing but their own entry (a length of at
most 7 days, a boundary or exit reason only where it means something, one end per lock).
``build.build_spec`` calls them; the checks across declarations are in ``declarations``."""

from __future__ import annotations

from typing import Any

from .. import diagnostics as d
from ..diagnostics import Diagnostic
from .model import (
    SIGNED_QUANTITIES,
    WINDOW_QUANTITIES,
    LockSpec,
    WindowAggregate,
    WindowSpec,
)
from .schema import path_text
from .yaml_source import Document

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_AGGREGATES: tuple[WindowAggregate, ...] = ("sum", "min", "max", "drawdown")
MAX_WINDOW = 7 * 86_400  # a rolling window keeps every event inside it: a week at most


def windows_of(
    doc: Document, raw: dict[str, Any], problems: list[Diagnostic]
) -> dict[str, WindowSpec]:
    """The declared rolling windows, their lengths in seconds (at most a week)."""
    out = {}
    for name, cfg in raw.items():
        text = str(cfg["over"])
        why = cfg.get("reason", [])
        reasons = tuple(why) if isinstance(why, list) else (str(why),)
        if reasons and cfg["count"] not in ("closes", "losing_closes"):
            where = ("windows", name, "reason")
            message = f"`{path_text(where)}`: only closes have an exit reason, not {cfg['count']}"
            problems.append(d.diagnostic(d.PT111, message, doc.span(where, key=True)))
        aggregate, quantity = _aggregate(doc, name, cfg, problems)
        if text == "trading_day" and "boundary" in cfg:
            where = ("windows", name, "boundary")
            message = f"`{path_text(where)}`: a trading-day window has no boundary to choose"
            problems.append(d.diagnostic(d.PT111, message, doc.span(where, key=True)))
        if text == "trading_day":  # a counter that starts again at every rollover
            per = str(cfg["per"])
            daily = WindowSpec(
                name, cfg["count"], per, 0, True, reasons, False, aggregate, quantity
            )
            out[name] = daily
            continue
        seconds = int(text[:-1]) * _UNITS[text[-1]]
        if seconds > MAX_WINDOW:
            where = ("windows", name, "over")
            message = f"`{path_text(where)}`: a window of {text} is longer than 7d"
            problems.append(d.diagnostic(d.PT308, message, doc.span(where)))
            continue
        closed = cfg.get("boundary", "open") == "closed"
        per = str(cfg["per"])
        out[name] = WindowSpec(
            name, cfg["count"], per, seconds, False, reasons, closed, aggregate, quantity
        )
    return out


def _aggregate(
    doc: Document, name: str, cfg: dict[str, Any], problems: list[Diagnostic]
) -> tuple[WindowAggregate | None, str | None]:
    """The aggregate a window reads instead of its count and the quantity it aggregates (at
    most one; a quantity its kind of event carries (PT312); a drawdown of one that can fall)."""
    found: list[WindowAggregate] = [a for a in _AGGREGATES if a in cfg]
    if not found:
        return None, None
    kind, quantity = str(cfg["count"]), str(cfg[found[0]])
    carried = WINDOW_QUANTITIES.get(kind, ())
    problem = None
    code = d.PT111
    if len(found) > 1:
        problem = (found[1], f"one aggregate per window, not `{found[0]}` and `{found[1]}`")
    elif quantity not in carried:
        code = d.PT312
        problem = (
            found[0],
            f"{kind} carry no `{quantity}` (they carry {', '.join(f'`{q}`' for q in carried)})",
        )
    elif found[0] == "drawdown" and quantity not in SIGNED_QUANTITIES:
        code = d.PT312
        problem = (
            found[0],
            f"`{quantity}` is never negative: its running total never falls, so its "
            f"drawdown is always 0 (a drawdown reads {', '.join(SIGNED_QUANTITIES)})",
        )
    if problem is not None:
        where = ("windows", name, problem[0])
        message = f"`{path_text(where)}`: {problem[1]}"
        problems.append(d.diagnostic(code, message, doc.span(where, key=code is d.PT111)))
        return None, None
    return found[0], quantity


def _seconds(text: str) -> int:
    return int(text[:-1]) * _UNITS[text[-1]]


def locks_of(doc: Document, raw: dict[str, Any], problems: list[Diagnostic]) -> dict[str, LockSpec]:
    """The declared timed locks: exactly one of `for` (at most 7d) and `until`."""
    out = {}
    for name, cfg in raw.items():
        where = ("locks", name)
        if ("for" in cfg) == ("until" in cfg):
            message = f"lock `{name}` needs exactly one of `for` and `until`"
            problems.append(d.diagnostic(d.PT111, message, doc.span(where, key=True)))
            continue
        seconds = _seconds(str(cfg["for"])) if "for" in cfg else None
        if seconds is not None and seconds > MAX_WINDOW:
            message = f"`{path_text((*where, 'for'))}`: a lock of {cfg['for']} is longer than 7d"
            problems.append(d.diagnostic(d.PT308, message, doc.span((*where, "for"))))
            continue
        round_to = _seconds(str(cfg["round_to"])) if "round_to" in cfg else None
        until = str(cfg["until"]) if "until" in cfg else None
        out[name] = LockSpec(
            name, str(cfg["window"]), int(cfg["at_least"]), seconds, until, round_to
        )
    return out


__all__ = ["MAX_WINDOW", "locks_of", "windows_of"]
