"""The event journal (JSON Lines) and deterministic replay.

Every input event a :class:`~policy_engine.PortfolioController` sees (intent,
fill, cancel, close, equity update, mode override, tick, policy load with its
content hash and YAML text) can be appended to a journal, one JSON object per
line, in the format documented in :mod:`policy_engine.controller` and
``schemas/journal.schema.json``. Journaling is off by default and on with one
argument: ``PortfolioController(policy, equity=..., journal="run.jsonl")`` (or
``journal=[]`` to collect the events in memory).

:func:`replay` re-runs a journal and yields the same decision records, byte for
byte once serialised with :func:`~policy_engine.controller.canonical`. The
controller uses no randomness, no wall clock and no hash-ordered iteration, so
this holds across processes and ``PYTHONHASHSEED`` values. Given another
policy, replay is a what-if: that policy replaces every policy the journal
loads. :func:`compare` runs the original and the what-if side by side in one
streaming pass and yields the decisions that differ.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import IO, Any

from .controller import EventError, PortfolioController, Record, _json_default, policy_from_event
from .engine.policy import Policy, load_policy

JournalSource = str | os.PathLike[str] | Iterable[Mapping[str, Any]]


class JournalWriter:
    """Appends events to a JSON Lines file (truncated when opened) or a list."""

    def __init__(self, target: str | os.PathLike[str] | list[dict[str, Any]]) -> None:
        self._list: list[dict[str, Any]] | None = None
        self._file: IO[str] | None = None
        if isinstance(target, list):
            self._list = target
        else:
            self.path = Path(target)
            self._file = self.path.open("w", encoding="utf-8")

    def write(self, event: dict[str, Any]) -> None:
        try:
            line = json.dumps(
                event, separators=(",", ":"), ensure_ascii=False, default=_json_default
            )
        except (TypeError, ValueError):  # e.g. non-string keys in a caller's bad intent
            line = json.dumps({"type": event.get("type"), "value": repr(event)})
        if self._list is not None:
            # A JSON round trip: the in-memory journal holds exactly what a file would.
            self._list.append(json.loads(line))
            return
        assert self._file is not None
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Stream the events of a JSON Lines journal (constant memory). Blank lines are skipped."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EventError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if not isinstance(event, dict):
                raise EventError(f"{path}:{number}: an event must be a JSON object")
            yield event


def _events(journal: JournalSource) -> Iterator[Mapping[str, Any]]:
    if isinstance(journal, str | os.PathLike):
        return read_events(journal)
    return iter(journal)


def _start(
    events: Iterator[Mapping[str, Any]], policy: Policy | str | os.PathLike[str] | None
) -> tuple[PortfolioController, list[Mapping[str, Any]]]:
    """A controller for replay, from the journal's opening policy event (or ``policy``)."""
    first = next(events, None)
    pending: list[Mapping[str, Any]] = []
    if first is not None and first.get("type") == "policy":
        chosen = policy_from_event(first) if policy is None else policy
    else:
        if policy is None:
            raise EventError("the journal does not start with a policy event; pass policy=")
        chosen = policy
        if first is not None:
            pending.append(first)
    if not isinstance(chosen, Policy):
        chosen = load_policy(os.fspath(chosen))
    ctl = PortfolioController(chosen, _replay=True)
    if pending:
        ctl._seq = 0  # no opening policy event to count
    return ctl, pending


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
    out: list[Record] = []
    ctl, pending = _start(events, policy)
    ctl._sink = out.append if lifecycle else None
    what_if = policy is not None
    for event in _chain(pending, events):
        if what_if and event.get("type") == "policy":
            ctl._next()  # counted, but the what-if policy stays in force
            continue
        rec = ctl.apply(event)
        if lifecycle:
            yield from out
            out.clear()
        elif rec is not None:
            yield rec


def _chain(
    first: list[Mapping[str, Any]], rest: Iterator[Mapping[str, Any]]
) -> Iterator[Mapping[str, Any]]:
    yield from first
    yield from rest


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


def journal_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one journal line."""
    text = files("policy_engine").joinpath("schemas/journal.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


__all__ = [
    "JournalWriter",
    "compare",
    "compare_runs",
    "diff_records",
    "journal_schema",
    "read_events",
    "replay",
]
