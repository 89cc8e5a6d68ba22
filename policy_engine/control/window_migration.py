"""The snapshot migration to format 13 (of the windows' section, unchanged from format 10
to 12): one shared log of events per kind instead of
a queue per window (control/windows.py).

Format 10 kept, per rolling window, ``[expiry, key]`` rows (``[expiry, key, units]`` for an
aggregate of realized P&L) and, per daily window, ``[null, key, count]``. Which rows of two
windows were the same event is lost, so each old row becomes a row of its kind's log that
belongs to its own window only (a fifth element, its name) with the event time its expiry
less the window's span, the key in the window's namespace, the first exit reason the window
filters on, and its quantity. Every window then counts and aggregates exactly what it did,
and its rows leave at the same times. The spans come from the snapshot's own policy text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..diagnostics import PolicyError
from ..engine.policy import load_policy_text
from .fields import EventError


def windows_from_10(data: dict[str, Any]) -> dict[str, Any]:
    """Format 10's ``windows`` section of ``data`` in format 11's shape."""
    ref = data["policy"]
    try:
        policy = load_policy_text(str(ref["source"]), str(ref["path"]))
    except PolicyError as exc:
        raise EventError(f"the snapshot's policy does not load: {exc}") from None
    specs = {w.name: w for w in policy.windows}
    rows: dict[str, list[tuple[datetime, str, list[Any]]]] = {}
    daily: dict[str, list[list[Any]]] = {}
    for name, old in sorted(data["windows"].items()):
        w = specs.get(name)
        if w is None:
            continue
        if w.daily:
            daily[name] = [[key, n] for _none, key, n in old]
            continue
        span = timedelta(seconds=w.over, microseconds=1 if w.closed else 0)
        reason = w.reasons[0] if w.reasons else None
        for row in old:
            time = datetime.fromisoformat(row[0]) - span
            keys = {} if w.per == "portfolio" else {w.per: row[1]}
            units = {"realized_pnl": row[2]} if len(row) > 2 else {}
            rows.setdefault(w.count, []).append(
                (time, name, [time.isoformat(), keys, reason, units, name])
            )
    logs: dict[str, list[list[Any]]] = {}
    for kind, entries in sorted(rows.items()):
        entries.sort(key=lambda e: (e[0], e[1]))  # stable: a window's own order stays
        logs[kind] = [e[2] for e in entries]
    clock = data["clock"]
    held: dict[str, int] = {}
    for name, w in sorted(specs.items()):
        if w.daily:
            continue
        log = rows.get(w.count, [])
        if not log or clock is None:
            held[name] = 0
            continue
        cut = datetime.fromisoformat(clock) - timedelta(
            seconds=w.over, microseconds=1 if w.closed else 0
        )
        held[name] = sum(1 for time, _n, _row in log if time > cut)
    return {"logs": logs, "held": held, "daily": daily}


__all__ = ["windows_from_10"]
