"""The lifecycle counters :class:`~.metrics.ControlMetrics` keeps, with their help text.

One table per kind of family: ``COUNTERS`` (events, by a bounded label) and ``AMOUNTS``
(risk moved, in the account currency). A counter is bumped from a record in
``ControlMetrics.lifecycle``; its name here is the family's, after the ``policy_engine_``
prefix (docs/observability.md lists them).
"""

from __future__ import annotations

# (name, label or "", help)
COUNTERS = (
    (
        "fills",
        "status",
        "Fills by status: committed, late (absorbed as an orphan position), "
        "duplicate, unknown, invalid.",
    ),
    (
        "late_fills",
        "after",
        "Late fills (orphan positions) by what the trade had done: cancelled, expired, closed.",
    ),
    ("reservation_expiries", "", "Reservations whose TTL ran out on event time."),
    ("cancels", "status", "Cancels by status (cancelled, or why nothing changed)."),
    ("closes", "status", "Closes by status (closed, or why nothing changed)."),
    ("mode_changes", "mode", "Changes of the portfolio mode, by the mode entered."),
    ("reloads", "outcome", "Policy reloads by outcome: ok, refused (the old policy stays)."),
    (
        "cancel_requests",
        "status",
        "Decided cancel requests (request_cancel) by status: cancelled, rejected, or why "
        "nothing was decided (no live order).",
    ),
    (
        "modify_requests",
        "status",
        "Decided modify requests (request_modify) by status: modified, rejected, or why "
        "nothing was decided (no live order, invalid).",
    ),
    (
        "order_groups",
        "outcome",
        "Order groups decided (all or none): approved, rejected, or refused (an id reused, "
        "stamped too far ahead: not journaled). Members' decisions are not in decisions_total.",
    ),
)
AMOUNTS = (
    ("filled_risk", "status", "Risk committed by fills (account currency), by fill status."),
    (
        "released_risk",
        "reason",
        "Reserved risk released unfilled (account currency), by "
        "reason: expired, cancelled, closed.",
    ),
    ("closed_risk", "", "Active (filled) risk released by closes (account currency)."),
)

__all__ = ["AMOUNTS", "COUNTERS"]
