"""Deterministic replay of a journal through the pure core, and what-if comparison.

:func:`replay` re-runs a journal and yields the same decision records, byte for
byte once serialised with :func:`~.events.canonical`. The core uses no
randomness, no wall clock and no hash-ordered iteration, so this holds across
processes and ``PYTHONHASHSEED`` values. Given another policy, replay is a
what-if: that policy replaces every policy the journal loads. :func:`compare`
runs the original and the what-if side by side in one streaming pass and
yields the decisions that differ.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..document.yaml_source import read_policy_bytes
from ..engine.policy import Policy, load_policy
from .core import ControlCore
from .events import EventError, Record, policy_from_event
from .journal import read_events
from .orders import REQUEST_TYPES
from .records import outcome

JournalSource = str | os.PathLike[str] | Iterable[Mapping[str, Any]]


def _events(journal: JournalSource) -> Iterator[Mapping[str, Any]]:
    if isinstance(journal, str | os.PathLike):
        return read_events(journal)
    return iter(journal)


def start(
    events: Iterator[Mapping[str, Any]], policy: Policy | str | os.PathLike[str] | None
) -> tuple[ControlCore, list[Mapping[str, Any]]]:
    """A core for replay, from the journal's opening policy event (or ``policy``), and
    the events already read that it still has to apply."""
    first = next(events, None)
    pending: list[Mapping[str, Any]] = []
    opened = first is not None and first.get("type") == "policy"
    if opened:
        assert first is not None
        chosen = policy_from_event(first, read_policy_bytes) if policy is None else policy
    else:
        if policy is None:
            raise EventError("the journal does not start with a policy event; pass policy=")
        chosen = policy
        if first is not None:
            pending.append(first)
    if not isinstance(chosen, Policy):
        chosen = load_policy(os.fspath(chosen))
    # The opening policy event is event 0; without one, the first event is.
    return ControlCore(chosen, seq=1 if opened else 0), pending


def replay(
    journal: JournalSource,
    policy: Policy | str | os.PathLike[str] | None = None,
    *,
    lifecycle: bool = False,
) -> Iterator[Record]:
    """Re-run a journal; yields its decision records (all records with ``lifecycle``).

    ``journal`` is a path or an iterable of event dicts. With ``policy``, every
    policy the journal loads is replaced by it (a what-if run).
    """
    events = _events(journal)
    core, pending = start(events, policy)
    what_if = policy is not None
    # Without lifecycle records, fills, cancels and closes build none (the hot path).
    step = core.replayer(records=lifecycle, read=read_policy_bytes)
    for event in itertools.chain(pending, events):
        kind = event.get("type")
        if what_if and kind == "policy":
            core.skip()  # counted, but the what-if policy stays in force
            continue
        out = step(event)
        if lifecycle:
            yield from out.records
        elif kind == "intent" or kind in REQUEST_TYPES:  # decided requests are decisions too
            yield out.records[-1]
        elif kind == "group":  # every member's decision (the group's record last, left out)
            yield from (r for r in out.records if r["kind"] == "decision")


def diff_records(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """How two decision records for the same event differ (``None`` if they agree)."""
    keys = ("decision_code", "approved", "approved_risk_abs", "rule_id")
    if all(old.get(k) == new.get(k) for k in keys):
        return None
    return {
        "seq": old.get("seq"),
        "intent_id": old.get("intent_id"),
        "old": {k: old.get(k) for k in keys},
        "new": {k: new.get(k) for k in keys},
        "old_reasons": old.get("reasons", []),
        "new_reasons": new.get("reasons", []),
    }


def change_kind(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """How a decision changed: ``approved -> rejected``, ``rejected by another rule``, ..."""
    a, b = outcome(old), outcome(new)
    if a != b:
        return f"{a} -> {b}"
    if a == "rejected":
        return "rejected by another rule"
    return "clip amount changed"


def change_rule(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The rule a change is due to: the new deciding rule, or the old one it no longer hits."""
    return new.get("rule_id") if outcome(new) != "approved" else old.get("rule_id")


def compare(
    journal: JournalSource,
    policy: Policy | str | os.PathLike[str] | None = None,
    *,
    base: Policy | str | os.PathLike[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Replay ``journal`` as recorded (or with ``base``) and with ``policy`` side by side;
    yield every decision that differs (intent id, old vs new code, approved amount, rule).

    ``journal`` must be re-iterable (a path or a list). ``base`` is needed only for an
    event stream without an opening policy event. With ``policy=None`` the replay is
    checked against itself and nothing differs unless the run is not deterministic.
    """
    original = replay(journal, base)
    what_if = replay(journal, policy if policy is not None else base)
    for old, new in zip(original, what_if, strict=True):
        diff = diff_records(old, new)
        if diff is not None:
            yield diff


def compare_runs(
    original: Iterable[Mapping[str, Any]], replayed: Iterable[Mapping[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Per-decision differences between two record streams of the same journal."""
    for old, new in zip(original, replayed, strict=True):
        diff = diff_records(old, new)
        if diff is not None:
            yield diff


__all__ = [
    "JournalSource",
    "change_kind",
    "change_rule",
    "compare",
    "compare_runs",
    "diff_records",
    "replay",
    "start",
]
