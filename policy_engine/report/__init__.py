"""The day report: a journal of events drawn as one self-contained HTML page.

A layer above the control plane (it runs events through a controller) and below
the CLI. :func:`build_report` is ``policy report``'s engine: the events through
the policy (:mod:`.timeline`), optionally again through a what-if policy, drawn
with matplotlib as inline SVG (:mod:`.charts`) into one HTML page
(:mod:`.page`). matplotlib is an optional extra (``pip install
'policy-engine[report]'``); :func:`missing` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..engine.policy import Policy

INSTALL_HINT = "pip install 'policy-engine[report]'"


def missing() -> str | None:
    """Why the report cannot be drawn here (matplotlib is not installed), or None."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"`policy report` draws with matplotlib, which is not installed: {INSTALL_HINT}"
    return None


def build_report(
    policy: Policy,
    events: Callable[[], Iterable[Mapping[str, Any]]],
    *,
    what_if: Policy | None = None,
    equity: float = 0.0,
    title: str = "Trading day report",
    sources: str = "",
    tick: Callable[[], None] | None = None,
) -> str:
    """The report's HTML. ``events`` gives a fresh iterable of the day's events per call
    (it is read :func:`passes` times); ``tick`` is called once per event read. A first run
    finds the cohorts drawn one by one (the hottest); both timelines draw those."""
    from .page import render
    from .timeline import hottest, simulate

    drawn = hottest(policy, events(), equity=equity, tick=tick)
    base = simulate(policy, events(), equity=equity, tick=tick, cohorts=drawn)
    other = (
        simulate(what_if, events(), what_if=True, equity=equity, tick=tick, cohorts=drawn)
        if what_if is not None
        else None
    )
    return render(base, other, title=title, sources=sources)


def passes(what_if: bool) -> int:
    """How many times :func:`build_report` reads the events."""
    return 3 if what_if else 2


__all__ = ["INSTALL_HINT", "build_report", "missing", "passes"]
