"""When a rejection on a rolling window or a timed lock frees up: ``retry_after``, and with
``on_reject: defer`` the decision code ``deferred``.

One rule for every shell: the control core asks its live windows and locks, a decision
against a snapshot (``policy test`` cases, ``policy explain``) asks the snapshot's buckets
(a lock's end as ``lock:<name>`` in a bucket's ``windows``, the core's own form, and when
the oldest event of a rolling window leaves as ``window_exits``, which a snapshot states
since it holds no events). Both hand their lookups to :func:`wait`, which sets the facts the
one decision builder (engine/verdict.py) turns into a decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..decision_codes import DEFERRED
from .runtime import LOCK_PREFIX

if TYPE_CHECKING:
    from .policy import Policy
    from .verdict import DecisionFacts

# (lock name, namespace, key) -> when that lock ends (None: it does not hold)
LockEnd = Callable[[str, str, str], datetime | None]
# (window name, key) -> when the oldest event of that key leaves the window (None: none)
WindowExit = Callable[[str, str], datetime | None]

_UTC_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def wait(
    facts: DecisionFacts,
    policy: Policy,
    index: int,
    intent: Any,
    keys: Mapping[str, str],
    lock_end: LockEnd,
    window_exit: WindowExit,
    day_end: datetime | None,
) -> None:
    """A rejection by rule ``index``, which reads windows or locks (``keys``: the intent's
    key in each namespace): ``retry_after`` (seconds) in its context when a lock that holds
    for the intent's key will end (the latest); with `on_reject: defer` also when one of its
    windows will let an event of that key go (the earliest; a daily window's at the end of
    the trading day, ``day_end``), and the decision is ``deferred`` (never an approval: the
    caller asks again, and the policy decides again)."""
    now = intent.timestamp
    spec = policy.checked.spec
    defer = policy.rules[index].on_reject == "defer"
    lock_ends: list[datetime] = []
    exits: list[datetime] = []
    for kind, name in policy.rule_waits[index]:
        window = spec.windows[spec.locks[name].window if kind == "lock" else name]
        key = keys.get(window.per)
        if key is None:
            continue
        if kind == "lock":
            end = lock_end(name, window.per, key)
            if end is not None and end > now:
                lock_ends.append(end)
        elif defer:
            out = day_end if window.daily else window_exit(name, key)
            if out is not None and out > now:
                exits.append(out)
    at = max([*lock_ends, *(([min(exits)]) if exits else [])], default=None)
    if at is None:
        return
    facts["context"]["retry_after"] = (at - now).total_seconds()
    if defer:
        facts["decision_code"] = DEFERRED


def snapshot_wait(
    facts: DecisionFacts, policy: Policy, index: int, intent: Any, snapshot: Any
) -> None:
    """:func:`wait` for a decision against ``snapshot`` (a PortfolioSnapshot)."""
    cohort = policy.cohort_of(intent.symbol, intent.correlation_bucket)
    keys = {"portfolio": "", "strategy": intent.strategy, "symbol": intent.symbol}
    keys |= {"cohort": cohort, **(policy.scopes_of(lambda n: getattr(intent, n, None)) or {})}

    def bucket(per: str, key: str) -> Any:
        if per == "portfolio":
            return snapshot
        tables = {"strategy": snapshot.strategies, "symbol": snapshot.symbols}
        table = tables.get(per, snapshot.cohorts if per == "cohort" else snapshot.scopes.get(per))
        return None if table is None else table.get(key)

    def lock_end(name: str, per: str, key: str) -> datetime | None:
        found = bucket(per, key)
        end = None if found is None else found.windows.get(LOCK_PREFIX + name)
        return None if not end else _UTC_EPOCH + timedelta(microseconds=int(end))

    def window_exit(name: str, key: str) -> datetime | None:
        found = bucket(policy.checked.spec.windows[name].per, key)
        return None if found is None else found.window_exits.get(name)

    calendar = policy.calendar
    day_end = calendar.check_from(calendar.day_of(intent.timestamp))
    wait(facts, policy, index, intent, keys, lock_end, window_exit, day_end)


__all__ = ["LockEnd", "WindowExit", "snapshot_wait", "wait"]
