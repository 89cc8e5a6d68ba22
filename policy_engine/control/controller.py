"""The in-process portfolio controller: the pure core behind a lock, with its collaborators.

:class:`PortfolioController` is the embedded default control plane. It owns a
:class:`~.core.ControlCore` and adds exactly what the core leaves out, each
collaborator injected rather than reached into: a re-entrant lock (thread
safety), a journal sink (every accepted event, written before it is applied),
a record sink (every record), the subscribers that receive envelope
broadcasts, the ``policy_engine`` logger (teaching lines), and policy file
watchers. Its method names follow the design note: ``request_allocation``,
``on_fill_update``, ``broadcast_constraints``, ``set_portfolio_mode``,
``get_portfolio_state``.

The event format and the trade lifecycle are documented in :mod:`.events` and
:mod:`.core`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from ..engine.contracts import AllocationDecision, PortfolioConstraintEnvelope, PortfolioIntent
from ..engine.policy import Policy, load_policy, load_policy_text
from .core import ControlCore, Outputs
from .events import (
    EventError,
    FillUpdate,
    Record,
    check_equity,
    check_mode,
    equity_event,
    field,
    fill_event,
    intent_event,
    lifecycle_event,
    mode_event,
    optional_timestamp,
    parse_fill,
    parse_intent,
    parse_timestamp,
    policy_event,
    policy_from_event,
    tick_event,
)
from .journal import JournalWriter
from .state import PortfolioState
from .watcher import PolicyWatcher

logger = logging.getLogger("policy_engine")
_enabled = logger.isEnabledFor
INFO = logging.INFO

RecordSink = Callable[[Record], None] | list[Record] | None
Subscriber = Callable[[PortfolioConstraintEnvelope], None]


class JournalSink(Protocol):
    """Where accepted events go before they are applied (a file, a list, a log)."""

    def write(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _read_file(path: str) -> bytes:
    return Path(path).read_bytes()


class PortfolioController:
    """The single authority over a portfolio's risk, in one process: decisions,
    reservations, modes.

    ``policy`` is a compiled :class:`~policy_engine.Policy` or a path to a policy
    file. ``journal`` (a path, a list to collect events in memory, or any
    :class:`JournalSink`) turns on the event journal; ``records`` (a list or a
    callable) receives every record.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str],
        equity: float = 0.0,
        *,
        peak_equity: float | None = None,
        journal: str | os.PathLike[str] | list[dict[str, Any]] | JournalSink | None = None,
        records: RecordSink = None,
    ) -> None:
        if not isinstance(policy, Policy):
            policy = load_policy(os.fspath(policy))
        self._core = ControlCore(policy)
        self._lock = threading.RLock()
        self._subscribers: dict[int, Subscriber] = {}
        self._next_token = 0
        self._watchers: list[PolicyWatcher] = []
        self._sink: Callable[[Record], None] | None
        if records is None:
            self._sink = None
        elif isinstance(records, list):
            self._sink = records.append
        else:
            self._sink = records
        self._journal: JournalSink | None
        if journal is None:
            self._journal = None
        elif isinstance(journal, str | os.PathLike | list):
            self._journal = JournalWriter(journal)
        else:
            self._journal = journal
        with self._lock:
            self._write(policy_event(policy))
            check_equity(equity, peak_equity)
            self._write(equity_event(equity, peak_equity, None))
            self._run(self._core.equity(equity, peak_equity, None, teach=self._teach()))

    # --- plumbing ------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._core.policy

    @property
    def core(self) -> ControlCore:
        """The deterministic core (read it; change it only through this controller)."""
        return self._core

    @property
    def state(self) -> PortfolioState:
        """The live aggregates the policy reads."""
        return self._core.state

    @property
    def journal(self) -> JournalSink | None:
        return self._journal

    def _write(self, event: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.write(event)

    @staticmethod
    def _teach() -> bool:
        return _enabled(logging.INFO)

    def _run(self, out: Outputs) -> Outputs:
        """Hand a core step's outputs to the collaborators."""
        sink = self._sink
        if sink is None and not out.logs and out.broadcast is None:
            return out  # nobody listens: the common case of a fill, cancel or close
        if sink is not None:
            for rec in out.records:
                sink(rec)
        for level, text in out.logs:
            logger.log(level, text)
        if out.broadcast is not None:
            self._broadcast(out.broadcast)
        return out

    def close(self) -> None:
        """Stop file watchers and close the journal."""
        for w in list(self._watchers):
            w.stop()
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> PortfolioController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- allocation ----------------------------------------------------------------------
    def request_allocation(self, intent: PortfolioIntent | Mapping[str, Any]) -> AllocationDecision:
        """Decide ``intent`` against the live state and reserve what is approved, atomically.

        Never raises for bad input: an intent that fails validation is rejected
        with ``rejected_invalid_intent`` and the validation message.
        """
        return self._request(intent, False)[0]

    def _request(self, intent: Any, want: bool) -> tuple[AllocationDecision, Record | None]:
        try:
            parsed = parse_intent(intent)
        except Exception as exc:  # never raise into the trading loop
            with self._lock:
                self._write(_intent_event_raw(intent))
                decision, refused, out = self._core.invalid_intent(
                    intent, str(exc), teach=self._teach()
                )
                self._run(out)
                return decision, refused
        with self._lock:
            if self._journal is not None:
                self._journal.write(
                    _intent_event_raw(intent) if parsed is not intent else intent_event(parsed)
                )
            decision, record, out = self._core.request(
                parsed, build=want or self._sink is not None, teach=self._teach()
            )
            if out.records or out.logs:
                self._run(out)
            return decision, record

    # --- fills, cancels, closes ----------------------------------------------------------
    def on_fill_update(self, fill: FillUpdate | Mapping[str, Any]) -> Record:
        """Commit one execution; returns the fill record (never raises for bad input).

        ``status``: ``committed``, ``duplicate`` (fill id seen: no-op), ``unknown``,
        ``expired`` / ``cancelled`` / ``closed`` (not absorbed) or ``invalid``.
        """
        parsed: FillUpdate | None
        message = ""
        if fill.__class__ is FillUpdate:
            parsed = fill  # checked just above
        else:
            try:
                parsed = parse_fill(fill)
            except Exception as exc:
                parsed, message = None, str(exc)
        with self._lock:
            if self._journal is None:
                pass
            elif parsed is not None and parsed is fill:
                self._journal.write(fill_event(parsed))
            elif isinstance(fill, Mapping):
                self._journal.write(
                    {"type": "fill", **{k: v for k, v in fill.items() if k != "type"}}
                )
            else:
                self._journal.write({"type": "fill", "value": repr(fill)})
            if parsed is None:
                out = self._core.invalid_fill(fill, message)
            else:
                out = self._core.fill(parsed, teach=_enabled(INFO))
            if self._sink is not None or out.logs:
                self._run(out)
            return out.records[-1]

    def cancel_reservation(self, intent_id: str, timestamp: datetime | str | None = None) -> Record:
        """Release the unfilled remainder of ``intent_id``'s reservation."""
        ts = optional_timestamp(timestamp)
        with self._lock:
            if self._journal is not None:
                self._journal.write(lifecycle_event("cancel", intent_id, ts))
            out = self._core.cancel(intent_id, ts, teach=_enabled(INFO))
            if self._sink is not None or out.logs:
                self._run(out)
            return out.records[-1]

    def close_position(self, intent_id: str, timestamp: datetime | str | None = None) -> Record:
        """End ``intent_id``'s trade: release its active and reserved risk and its slot."""
        ts = optional_timestamp(timestamp)
        with self._lock:
            if self._journal is not None:
                self._journal.write(lifecycle_event("close", intent_id, ts))
            out = self._core.close(intent_id, ts, teach=_enabled(INFO))
            if self._sink is not None or out.logs:
                self._run(out)
            return out.records[-1]

    def advance_time(self, timestamp: datetime | str) -> list[Record]:
        """Move the logical clock (a ``tick``); returns the expiry records it caused."""
        ts = parse_timestamp(timestamp)
        with self._lock:
            self._write(tick_event(ts))
            return list(self._run(self._core.tick(ts, teach=self._teach())).records)

    # --- equity, modes, envelopes --------------------------------------------------------
    def update_equity(
        self,
        equity: float,
        timestamp: datetime | str | None = None,
        *,
        peak_equity: float | None = None,
    ) -> Record:
        """Track equity, peak and drawdown; a drawdown tier change broadcasts the new envelope."""
        ts = optional_timestamp(timestamp)
        check_equity(equity, peak_equity)
        with self._lock:
            self._write(equity_event(equity, peak_equity, ts))
            out = self._core.equity(equity, peak_equity, ts, teach=self._teach())
            return self._run(out).records[-1]

    def set_portfolio_mode(
        self,
        mode: Literal["normal", "defensive", "risk_off"] | None,
        reason: str = "",
        timestamp: datetime | str | None = None,
    ) -> PortfolioConstraintEnvelope:
        """Set (or with ``None`` clear) the mode override; the stricter of it and the
        drawdown mode applies. Every subscriber gets the new envelope before this returns."""
        check_mode(mode)
        ts = optional_timestamp(timestamp)
        with self._lock:
            self._write(mode_event(mode, reason, ts))
            out = self._run(self._core.set_mode(mode, reason, ts, teach=self._teach()))
            assert out.broadcast is not None
            return out.broadcast

    def constraints(self) -> PortfolioConstraintEnvelope:
        """The current envelope (without pushing it)."""
        with self._lock:
            return self._core.envelope()

    def broadcast_constraints(self) -> PortfolioConstraintEnvelope:
        """Push the current envelope to every subscriber; returns it."""
        with self._lock:
            env = self._core.envelope()
            self._broadcast(env)
            return env

    def _broadcast(self, env: PortfolioConstraintEnvelope) -> None:
        for callback in list(self._subscribers.values()):
            try:
                callback(env)
            except Exception:
                logger.exception("constraint subscriber %r failed", callback)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register an instrument workflow; it gets the current envelope at once and
        every broadcast after. Returns a function that unsubscribes it."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._subscribers[token] = callback
            env = self._core.envelope()
            try:
                callback(env)
            except Exception:
                logger.exception("constraint subscriber %r failed", callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(token, None)

        return unsubscribe

    # --- audit ---------------------------------------------------------------------------
    def get_portfolio_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of everything: equity, mode, aggregates, reservations."""
        with self._lock:
            return self._core.portfolio_state()

    # --- policy reload -------------------------------------------------------------------
    def reload(self, path: str | os.PathLike[str] | None = None) -> Record:
        """Swap in a new policy version atomically, keeping the live state.

        A file that fails to load is refused: the old policy stays in force and
        the returned record has ``ok: false`` and the error.
        """
        target = str(path if path is not None else self.policy.path)
        try:
            policy = load_policy_text(_read_file(target), target)
        except Exception as exc:
            rec: Record = {
                "kind": "reload",
                "ok": False,
                "path": target,
                "error": str(exc),
                "policy": dict(self._core.policy_ref),
            }
            logger.error(
                "[RISK:POLICY] reload of %s refused, keeping %s: %s", target, self.policy, exc
            )
            if self._sink is not None:
                self._sink(rec)
            return rec
        return self.use_policy(policy)

    def use_policy(self, policy: Policy) -> Record:
        """Put a compiled policy in force (what ``reload`` does after loading)."""
        with self._lock:
            self._write(policy_event(policy))
            return self._run(self._core.use_policy(policy, teach=self._teach())).records[-1]

    def watch(
        self, path: str | os.PathLike[str] | None = None, interval: float = 1.0
    ) -> PolicyWatcher:
        """Start a polling watcher that reloads the policy file when it changes; it stops
        with :meth:`close`."""
        watcher = PolicyWatcher(self, path if path is not None else self.policy.path, interval)
        watcher.start()
        return watcher

    def attach(self, watcher: PolicyWatcher) -> None:
        """Stop ``watcher`` when this controller closes (a started watcher attaches itself)."""
        if watcher not in self._watchers:
            self._watchers.append(watcher)

    def detach(self, watcher: PolicyWatcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    # --- events --------------------------------------------------------------------------
    def apply(self, event: Mapping[str, Any]) -> Record | None:
        """Apply one event dict (see :mod:`.events`); returns the decision record for an
        ``intent`` and ``None`` for every other event."""
        kind = event.get("type")
        if kind == "intent":
            return self._request(event, True)[1]
        if kind == "fill":
            self.on_fill_update(event)
        elif kind == "cancel":
            self.cancel_reservation(field(event, "intent_id"), event.get("timestamp"))
        elif kind == "close":
            self.close_position(field(event, "intent_id"), event.get("timestamp"))
        elif kind == "equity":
            peak = event.get("peak_equity")
            self.update_equity(
                field(event, "equity", (int, float)), event.get("timestamp"), peak_equity=peak
            )
        elif kind == "mode":
            self.set_portfolio_mode(
                event.get("mode"), event.get("reason") or "", event.get("timestamp")
            )
        elif kind == "tick":
            self.advance_time(field(event, "timestamp", (str, datetime)))
        elif kind == "policy":
            self.use_policy(policy_from_event(event, _read_file))
        else:
            raise EventError(f"unknown event type {kind!r}")
        return None

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> list[Record]:
        """Apply events in order; returns the decision records."""
        out = []
        for event in events:
            rec = self.apply(event)
            if rec is not None:
                out.append(rec)
        return out


def _intent_event_raw(raw: Any) -> dict[str, Any]:
    """The journal line of an intent as the caller gave it."""
    if isinstance(raw, PortfolioIntent):
        return intent_event(raw)
    if isinstance(raw, Mapping):
        return {"type": "intent", **{k: v for k, v in raw.items() if k != "type"}}
    return {"type": "intent", "value": repr(raw)}


__all__ = ["JournalSink", "PortfolioController", "RecordSink", "Subscriber"]
