"""The portfolio control plane: one authority turning a policy plus events into decisions.

:class:`PortfolioController` keeps the live portfolio state (see :mod:`.state`),
evaluates every intent against it with the compiled policy and reserves what it
approves, all in one step under one lock. Its method names follow the design
note: ``request_allocation``, ``on_fill_update``, ``broadcast_constraints``,
``set_portfolio_mode``, ``get_portfolio_state``.

Trade lifecycle
---------------
- An approved intent that adds risk *reserves* its approved risk and counts as
  one live trade for its strategy, symbol, cohort and the portfolio. A
  risk-reducing intent (``side: flat`` or ``reduce_only``) is decided like any
  other but reserves nothing and takes no trade slot; the reduction itself is
  reported with ``close_position``. An approved intent of zero risk reserves
  nothing but still takes a trade slot (it is a trade).
- A *fill* names the ``intent_id``, its own ``fill_id`` and ``filled_risk_abs``,
  the risk of **this** execution (incremental, not cumulative). It moves that
  amount from reserved to active; the first fill makes the trade an open
  position. A repeated ``fill_id`` is a no-op (status ``duplicate``). A fill
  beyond the reservation is committed in full (it is real exposure) and flagged
  with ``overfill_risk_abs``. A fill for an unknown intent, or for one whose
  reservation was cancelled, expired or closed, is *not* absorbed: it is
  reported with status ``unknown`` / ``expired`` / ``cancelled`` / ``closed``.
- ``cancel_reservation`` releases the unfilled remainder. A trade with no fill
  ends there (its slot is freed); a partly filled one stays open.
- ``close_position`` ends a trade: it releases its active risk and any unfilled
  remainder and frees the trade slot, so a strategy at ``max_trades`` can trade
  again.
- Reservation TTL runs on the events' own timestamps (a logical clock: the
  latest timestamp seen; it never moves back and never reads the wall clock).
  A reservation made while the clock reads ``T`` is live on ``[T, T + ttl)``:
  the first event stamped ``T + ttl`` or later (any event, including a
  ``tick``) releases its unfilled remainder *before* that event is processed.
  The deadline is fixed when the reservation is made (a reload does not move
  it). A policy without ``reservation_ttl_sec`` never expires reservations.

Modes
-----
The policy's drawdown tiers select a mode from ``update_equity``;
``set_portfolio_mode`` sets an override (``None`` clears it). The stricter one
applies, and every decision records which one and why. When the mode changes
(or an override is set, or a policy is reloaded), every subscriber receives
the new :class:`~policy_engine.contracts.PortfolioConstraintEnvelope` before
the call that caused it returns.

Events (``apply`` and the journal)
----------------------------------
One JSON object per event, discriminated by ``type``; timestamps are ISO 8601
with a UTC offset (``2026-01-01T00:00:00Z``)::

    {"type": "intent", "intent_id": "i1", "strategy": "SCALPER", "symbol": "BTC-USD",
     "side": "long", "requested_risk_abs": 500, "timestamp": "..."}   # + optional intent fields
    {"type": "fill", "intent_id": "i1", "fill_id": "f1", "filled_risk_abs": 200, "timestamp": "..."}
    {"type": "cancel", "intent_id": "i1", "timestamp": "..."}
    {"type": "close", "intent_id": "i1", "timestamp": "..."}
    {"type": "equity", "equity": 95000, "timestamp": "..."}          # optional "peak_equity"
    {"type": "mode", "mode": "risk_off", "reason": "judge", "timestamp": "..."}  # mode null clears
    {"type": "tick", "timestamp": "..."}                              # advance the logical clock
    {"type": "policy", "name": "...", "version": 1, "hash": "sha256:...",
     "path": "policies/portfolio.yaml", "source": "<the YAML text>"}  # a policy load

``timestamp`` may be ``null`` on ``equity`` and ``mode`` events (the clock does
not move). ``apply(event)`` returns the decision record for an ``intent`` and
``None`` for every other event; all records (decisions and lifecycle records:
``fill``, ``cancel``, ``close``, ``expire``, ``equity``, ``mode``, ``reload``)
go to the record sink.

Telemetry
---------
Each decision logs its teaching line (``Verdict.log_line()``) at INFO on the
``policy_engine`` logger and produces a structured record (a JSON-ready dict;
see :data:`DECISION_KEYS`). ``canonical(record)`` is its byte-exact
serialisation, the one replay is compared on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from .engine.contracts import (
    MODE_SEVERITY,
    RISK_SCALE,
    AllocationDecision,
    Amount,
    Clip,
    Name,
    PortfolioConstraintEnvelope,
    PortfolioIntent,
    RuleWarning,
    fast_model,
    from_units,
    to_units,
)
from .engine.policy import Policy, Verdict, load_policy_text
from .state import MemoryStore, PortfolioStore, Trade

logger = logging.getLogger("policy_engine")

INVALID_INTENT_CODE = "rejected_invalid_intent"
DUPLICATE_INTENT_CODE = "rejected_duplicate_intent"

_SCALE = float(RISK_SCALE)
_INF = float("inf")
_INFO = logging.INFO

# The keys of a decision record, in the order they are built.
DECISION_KEYS = (
    "kind",
    "seq",
    "ts",
    "intent_id",
    "strategy",
    "symbol",
    "cohort",
    "side",
    "approved",
    "decision_code",
    "rule_id",
    "category",
    "requested_risk_abs",
    "approved_risk_abs",
    "reserved_risk_abs",
    "reasons",
    "context",
    "headroom",
    "clips",
    "warnings",
    "mode",
    "mode_source",
    "mode_reason",
    "policy",
    "before",
    "after",
)

Record = dict[str, Any]
RecordSink = Callable[[Record], None] | list[Record] | None
Subscriber = Callable[[PortfolioConstraintEnvelope], None]


class EventError(ValueError):
    """An event that cannot be applied (unknown type, missing or malformed field)."""


class FillUpdate(BaseModel):
    """One execution reported by the execution ledger (incremental risk)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    intent_id: Name
    fill_id: Name
    filled_risk_abs: Amount
    timestamp: AwareDatetime


def canonical(record: Mapping[str, Any]) -> str:
    """The byte-exact serialisation of a record (sorted keys, no spaces)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    # Whatever else a caller handed in (it failed validation anyway): journal its repr.
    return repr(value)


def parse_timestamp(value: Any, what: str = "timestamp") -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string with an offset."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise EventError(f"{what}: not an ISO 8601 timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        raise EventError(f"{what}: expected a timestamp, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventError(f"{what}: timestamp must carry a UTC offset")
    return value


def _opt_timestamp(value: Any) -> datetime | None:
    return None if value is None else parse_timestamp(value)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "intent"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _totals(state: Any) -> dict[str, Any]:
    return {
        "active_risk": state.active_units / _SCALE,
        "reserved_risk": state.reserved_units / _SCALE,
        "active_trades": state.active_trades,
        "open_positions": state.open_positions,
    }


def _policy_event(policy: Policy, source: str | None) -> Record:
    return {
        "type": "policy",
        "name": policy.name,
        "version": policy.version,
        "hash": policy.content_hash,
        "path": policy.path,
        "source": source,
    }


def policy_from_event(event: Mapping[str, Any]) -> Policy:
    """Rebuild the policy a ``policy`` event names, verifying its content hash."""
    source, path, expected = (
        event.get("source"),
        str(event.get("path") or "<policy>"),
        event["hash"],
    )
    raw = source.encode("utf-8") if isinstance(source, str) else None
    if raw is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise EventError(
                f"policy event has no source and {path} cannot be read ({exc}); "
                "pass the policy to replay (policy=...)"
            ) from exc
    policy = load_policy_text(raw, path)
    if policy.content_hash != expected:
        raise EventError(
            f"policy {event.get('name')} v{event.get('version')}: content hash {policy.content_hash} "
            f"does not match the journal's {expected}"
        )
    return policy


class PortfolioController:
    """The single authority over a portfolio's risk: decisions, reservations, modes.

    ``policy`` is a compiled :class:`~policy_engine.Policy` or a path to a policy
    file. ``journal`` (a path, or a list to collect events in memory) turns on
    the event journal; ``records`` (a list or a callable) receives every record.
    ``store`` replaces the in-memory state with another :class:`PortfolioStore`.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str],
        equity: float = 0.0,
        *,
        peak_equity: float | None = None,
        journal: str | os.PathLike[str] | list[Record] | None = None,
        records: RecordSink = None,
        store: PortfolioStore | None = None,
        _replay: bool = False,
    ) -> None:
        source: str | None = None
        if not isinstance(policy, Policy):
            raw = Path(policy).read_bytes()
            source = raw.decode("utf-8")
            policy = load_policy_text(raw, str(policy))
        elif not _replay:
            source = policy.source
        self._policy: Policy = policy
        self._store: PortfolioStore = store if store is not None else MemoryStore()
        self._lock = self._store.lock()
        self._seq = 0
        self._subscribers: dict[int, Subscriber] = {}
        self._next_token = 0
        self._env_cache: tuple[int, Policy, PortfolioConstraintEnvelope] | None = None
        self._last_mode: str | None = None
        self._watchers: list[PolicyWatcher] = []
        self._sink: Callable[[Record], None] | None
        if records is None:
            self._sink = None
        elif isinstance(records, list):
            self._sink = records.append
        else:
            self._sink = records
        self._journal: Any = None
        if journal is not None:
            from .journal import JournalWriter

            self._journal = JournalWriter(journal)
        self._policy_dict = self._ref_dict(policy)
        self._ttl = _ttl(policy)
        self._iso_ts: datetime | None = None  # the last timestamp formatted, and its text
        self._iso = ""
        if _replay:
            self._seq = 1  # the journal's opening policy event
        else:
            with self._lock:
                self._seq = 1
                self._write(_policy_event(policy, source))
                self._apply_equity(equity, peak_equity, None)
        self._last_mode = self._mode_info()[0]

    # --- plumbing ------------------------------------------------------------------------
    @staticmethod
    def _ref_dict(policy: Policy) -> dict[str, Any]:
        return {"name": policy.name, "version": policy.version, "hash": policy.content_hash}

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._policy

    @property
    def store(self) -> PortfolioStore:
        return self._store

    def _write(self, event: Record) -> None:
        if self._journal is not None:
            self._journal.write(event)

    def _emit(self, record: Record) -> None:
        if self._sink is not None:
            self._sink(record)

    def _next(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

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

    # --- the clock -----------------------------------------------------------------------
    def _advance(self, ts: datetime | None, seq: int) -> list[Record]:
        if ts is None:
            return []
        expired = self._store.advance(ts)
        return self._expired(expired, seq) if expired else []

    def _expired(self, expired: list[Trade], seq: int) -> list[Record]:
        out = []
        for trade in expired:
            rec = self._lifecycle("expire", seq, trade)
            rec["released_risk_abs"] = from_units(max(0, trade.approved_units - trade.filled_units))
            rec["deadline"] = trade.expires.isoformat() if trade.expires else None
            if logger.isEnabledFor(_INFO):
                logger.info(
                    "[RISK:RESERVATION] %s %s %s expired at %s → RELEASED %s",
                    trade.strategy,
                    trade.symbol,
                    trade.intent_id,
                    rec["deadline"],
                    rec["released_risk_abs"],
                )
            self._emit(rec)
            out.append(rec)
        return out

    def _lifecycle(self, kind: str, seq: int, trade: Trade | None, intent_id: str = "") -> Record:
        rec: Record = {"kind": kind, "seq": seq}
        if trade is not None:
            rec.update(
                intent_id=trade.intent_id,
                strategy=trade.strategy,
                symbol=trade.symbol,
                cohort=trade.cohort,
            )
        else:
            rec["intent_id"] = intent_id
        rec["after"] = _totals(self._store.state)
        return rec

    def advance_time(self, timestamp: datetime | str) -> list[Record]:
        """Move the logical clock (a ``tick``); returns the expiry records it caused."""
        ts = parse_timestamp(timestamp)
        with self._lock:
            seq = self._next()
            self._write({"type": "tick", "timestamp": ts.isoformat()})
            return self._advance(ts, seq)

    # --- allocation ----------------------------------------------------------------------
    def request_allocation(self, intent: PortfolioIntent | Mapping[str, Any]) -> AllocationDecision:
        """Decide ``intent`` against the live state and reserve what is approved, atomically.

        Never raises for bad input: an intent that fails validation is rejected
        with ``rejected_invalid_intent`` and the validation message.
        """
        return self._request(intent, False)[0]

    def _request(self, intent: Any, want: bool) -> tuple[AllocationDecision, Record | None]:
        if isinstance(intent, PortfolioIntent):
            with self._lock:
                return self._allocate(intent, None, want)
        raw: Any = intent
        try:
            if not isinstance(raw, Mapping):
                raise TypeError(f"expected a PortfolioIntent or a dict, got {type(raw).__name__}")
            body = {k: v for k, v in raw.items() if k != "type"}
            parsed = PortfolioIntent.model_validate(body)
        except ValidationError as exc:
            return self._invalid(raw, _validation_message(exc))
        except Exception as exc:  # never raise into the trading loop
            return self._invalid(raw, str(exc))
        with self._lock:
            return self._allocate(parsed, raw, want)

    def _allocate(
        self, intent: PortfolioIntent, raw: Mapping[str, Any] | None, want: bool
    ) -> tuple[AllocationDecision, Record | None]:
        """Evaluate and reserve (the caller holds the lock). The record is built only
        when someone consumes it (``want``, a record sink): telemetry costs nothing
        when nobody listens."""
        seq = self._seq
        self._seq = seq + 1
        if self._journal is not None:
            self._journal.write(self._intent_event(intent, raw))
        store = self._store
        ts = intent.timestamp
        expired = store.advance(ts)
        if expired:
            self._expired(expired, seq)
        state = store.state
        sink = self._sink
        build = want or sink is not None
        before = _totals(state) if build else None
        policy = self._policy
        iid = intent.intent_id
        if store.get(iid) is not None:
            return self._duplicate(intent, seq, _totals(state))
        out = policy.decide(intent, state)
        verdict = None
        data = policy.data
        cohort = data.cohort_name(intent.symbol, intent.correlation_bucket)
        mode = data.modes[out[5]]
        if out[6]:
            mode_source = "override"
            mode_reason = state.mode_override_reason or "override"
        else:
            mode_source = "drawdown"
            mode_reason = mode.reason
        approved = out[0] == 0
        requested = intent.requested_risk_abs
        if logger.isEnabledFor(_INFO):
            verdict = verdict or Verdict(policy, intent, state, out)
            logger.info(verdict.log_line())
        if approved and out[1] < 0 and not out[3] and not out[4]:
            # The common path: approved in full by the whole chain.
            amount = out[2]
            code = "approved_full"
            rule_id = category = headroom = None
            reasons: list[str] = []
            context: dict[str, Any] = {}
            clips: list[dict[str, Any]] = []
            clip_objs: list[Clip] = []
            warnings: list[dict[str, Any]] = []
            warn_objs: list[RuleWarning] = []
        else:
            verdict = verdict or Verdict(policy, intent, state, out)
            amount = out[2] if approved else 0.0
            code = verdict.decision_code
            rule = verdict.rule
            rule_id = verdict.rule_id
            category = rule.category if rule is not None else None
            explained = rule is not None or verdict.error is not None
            reasons = verdict.reasons if explained else []
            context = verdict.context if explained else {}
            headroom = verdict.headroom if rule is not None else None
            rules = policy.rules
            clips = [
                {"rule_id": rules[i].id, "from_risk": a, "to_risk": b} for i, a, b in out[3] or ()
            ]
            clip_objs = [fast_model(Clip, dict(c)) for c in clips]
            warn_objs = verdict.warnings if out[4] else []
            warnings = [w.model_dump() for w in warn_objs]
        reserved = 0.0
        mutated = False
        if approved and not (intent.side == "flat" or intent.reduce_only):
            mutated = True
            units = to_units(amount)
            created = store.clock or ts
            ttl = self._ttl
            store.reserve(
                Trade(
                    iid,
                    intent.strategy,
                    intent.symbol,
                    cohort,
                    units,
                    seq,
                    created,
                    None if ttl is None else created + ttl,
                )
            )
            reserved = units / _SCALE
        decision: AllocationDecision = fast_model(
            AllocationDecision,
            {
                "intent_id": iid,
                "approved": approved,
                "requested_risk_abs": requested,
                "approved_risk_abs": amount,
                "decision_code": code,
                "rule_id": rule_id,
                "category": category,
                "reasons": [*reasons],
                "context": {**context},
                "headroom": headroom,
                "clips": clip_objs,
                "warnings": warn_objs,
                "mode": mode.name,
                "mode_source": mode_source,
                "mode_reason": mode_reason,
                "constraint_envelope": self._envelope(),
                "reservation_ttl_sec": policy.reservation_ttl_sec,
                "policy": policy.ref,
            },
        )
        if not build:
            return decision, None
        if ts is not self._iso_ts:
            self._iso = ts.isoformat()
            self._iso_ts = ts
        record: Record = {
            "kind": "decision",
            "seq": seq,
            "ts": self._iso,
            "intent_id": iid,
            "strategy": intent.strategy,
            "symbol": intent.symbol,
            "cohort": cohort,
            "side": intent.side,
            "approved": approved,
            "decision_code": code,
            "rule_id": rule_id,
            "category": category,
            "requested_risk_abs": requested,
            "approved_risk_abs": amount,
            "reserved_risk_abs": reserved,
            "reasons": reasons,
            "context": context,
            "headroom": headroom,
            "clips": clips,
            "warnings": warnings,
            "mode": mode.name,
            "mode_source": mode_source,
            "mode_reason": mode_reason,
            "policy": self._policy_dict,
            "before": before,
            "after": _totals(state) if mutated else before,
        }
        if sink is not None:
            sink(record)
        return decision, record

    def _intent_event(self, intent: PortfolioIntent, raw: Mapping[str, Any] | None) -> Record:
        if raw is not None:
            return {"type": "intent", **{k: v for k, v in raw.items() if k != "type"}}
        return {"type": "intent", **intent.model_dump(mode="json", exclude_defaults=True)}

    def _rejection(
        self,
        seq: int,
        intent_id: str,
        requested: float,
        code: str,
        message: str,
        before: dict[str, Any],
        extra: Mapping[str, Any],
        ts: str | None,
        category: str,
    ) -> tuple[AllocationDecision, Record]:
        mode, source, reason = self._mode_info()
        policy = self._policy
        record: Record = {
            "kind": "decision",
            "seq": seq,
            "ts": ts,
            "intent_id": intent_id,
            "strategy": extra.get("strategy"),
            "symbol": extra.get("symbol"),
            "cohort": extra.get("cohort"),
            "side": extra.get("side"),
            "approved": False,
            "decision_code": code,
            "rule_id": None,
            "category": category,
            "requested_risk_abs": requested,
            "approved_risk_abs": 0.0,
            "reserved_risk_abs": 0.0,
            "reasons": [message],
            "context": {},
            "headroom": None,
            "clips": [],
            "warnings": [],
            "mode": mode,
            "mode_source": source,
            "mode_reason": reason,
            "policy": self._policy_dict,
            "before": before,
            "after": before,
        }
        decision: AllocationDecision = fast_model(
            AllocationDecision,
            {
                "intent_id": intent_id,
                "approved": False,
                "requested_risk_abs": requested,
                "approved_risk_abs": 0.0,
                "decision_code": code,
                "rule_id": None,
                "category": category,
                "reasons": [message],
                "context": {},
                "headroom": None,
                "clips": [],
                "warnings": [],
                "mode": mode,
                "mode_source": source,
                "mode_reason": reason,
                "constraint_envelope": self._envelope(),
                "reservation_ttl_sec": policy.reservation_ttl_sec,
                "policy": policy.ref,
            },
        )
        if logger.isEnabledFor(_INFO):
            who = " ".join(str(x) for x in (extra.get("strategy"), extra.get("symbol")) if x)
            logger.info("[RISK:%s] %s → BLOCKED (%s)", category, who or intent_id or "?", message)
        self._emit(record)
        return decision, record

    def _invalid(self, raw: Any, message: str) -> tuple[AllocationDecision, Record]:
        fields: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        iid = fields.get("intent_id")
        iid = iid if isinstance(iid, str) else ""
        req = fields.get("requested_risk_abs")
        requested = (
            float(req)
            if isinstance(req, int | float) and not isinstance(req, bool) and req == req
            else 0.0
        )
        if requested in (float("inf"), float("-inf")):
            requested = 0.0
        ts = fields.get("timestamp")
        ts_text = (
            ts.isoformat() if isinstance(ts, datetime) else ts if isinstance(ts, str) else None
        )
        extra = {
            k: v for k in ("strategy", "symbol", "side") if isinstance(v := fields.get(k), str)
        }
        with self._lock:
            seq = self._next()
            if self._journal is not None:
                body = (
                    {k: v for k, v in fields.items() if k != "type"}
                    if isinstance(raw, Mapping)
                    else {"value": repr(raw)}
                )
                self._journal.write({"type": "intent", **body})
            before = _totals(self._store.state)
            return self._rejection(
                seq,
                iid,
                requested,
                INVALID_INTENT_CODE,
                message,
                before,
                extra,
                ts_text,
                "VALIDATION",
            )

    def _duplicate(
        self, intent: PortfolioIntent, seq: int, before: dict[str, Any]
    ) -> tuple[AllocationDecision, Record]:
        extra = {
            "strategy": intent.strategy,
            "symbol": intent.symbol,
            "cohort": self._policy.data.cohort_name(intent.symbol, intent.correlation_bucket),
            "side": intent.side,
        }
        return self._rejection(
            seq,
            intent.intent_id,
            intent.requested_risk_abs,
            DUPLICATE_INTENT_CODE,
            f"intent {intent.intent_id} already holds a live reservation or position",
            before,
            extra,
            intent.timestamp.isoformat(),
            "CONTROLLER",
        )

    # --- fills, cancels, closes ----------------------------------------------------------
    def on_fill_update(self, fill: FillUpdate | Mapping[str, Any]) -> Record:
        """Commit one execution; returns the fill record (never raises for bad input).

        ``status``: ``committed``, ``duplicate`` (fill id seen: no-op), ``unknown``,
        ``expired`` / ``cancelled`` / ``closed`` (not absorbed) or ``invalid``.
        """
        raw: Any = fill
        parsed: FillUpdate | None = None
        message = ""
        if isinstance(fill, FillUpdate):
            parsed = fill
        else:
            try:
                if not isinstance(raw, Mapping):
                    raise TypeError(f"expected a FillUpdate or a dict, got {type(raw).__name__}")
                parsed = FillUpdate.model_validate({k: v for k, v in raw.items() if k != "type"})
            except ValidationError as exc:
                message = _validation_message(exc)
            except Exception as exc:
                message = str(exc)
        with self._lock:
            seq = self._next()
            if self._journal is not None:
                if parsed is not None and raw is parsed:
                    body = parsed.model_dump(mode="json")
                elif isinstance(raw, Mapping):
                    body = {k: v for k, v in raw.items() if k != "type"}
                else:
                    body = {"value": repr(raw)}
                self._journal.write({"type": "fill", **body})
            if parsed is None:
                iid = raw.get("intent_id") if isinstance(raw, Mapping) else None
                rec = self._lifecycle("fill", seq, None, iid if isinstance(iid, str) else "")
                rec.update(status="invalid", message=message)
                logger.warning("[RISK:FILL] invalid fill → REJECTED (%s)", message)
                self._emit(rec)
                return rec
            self._advance(parsed.timestamp, seq)
            return self._fill(parsed, seq)

    def _fill(self, fill: FillUpdate, seq: int) -> Record:
        store = self._store
        units = to_units(fill.filled_risk_abs)
        before = _totals(store.state)
        trade = store.get(fill.intent_id)
        status = "committed"
        committed = overfill = 0
        if trade is None:
            status = store.ended(fill.intent_id) or "unknown"
        elif trade.released is not None:
            status = trade.released
        elif trade.fills is not None and fill.fill_id in trade.fills:
            status = "duplicate"
        else:
            _from_reserved, overfill = store.fill(trade, fill.fill_id, units)
            committed = units
        rec = self._lifecycle("fill", seq, trade, fill.intent_id)
        rec.update(
            fill_id=fill.fill_id,
            ts=fill.timestamp.isoformat(),
            status=status,
            filled_risk_abs=from_units(units),
            committed_risk_abs=from_units(committed),
            overfill_risk_abs=from_units(overfill),
            before=before,
        )
        if status not in ("committed", "duplicate"):
            rec["message"] = (
                f"fill {fill.fill_id} for {fill.intent_id}: no live reservation ({status}); "
                "not absorbed"
            )
            logger.warning("[RISK:FILL] %s", rec["message"])
        elif overfill and logger.isEnabledFor(logging.WARNING):
            logger.warning(
                "[RISK:FILL] %s fill %s exceeds the reservation by %s",
                fill.intent_id,
                fill.fill_id,
                from_units(overfill),
            )
        self._emit(rec)
        return rec

    def _begin_lifecycle(
        self, kind: str, intent_id: str, ts: datetime | None
    ) -> tuple[int, dict[str, Any], Any]:
        """Sequence and journal a cancel or close, expire what its timestamp passes, and
        return (seq, totals before, the live trade or None). The caller holds the lock."""
        seq = self._next()
        self._write({"type": kind, "intent_id": intent_id, "timestamp": ts and ts.isoformat()})
        self._advance(ts, seq)
        store = self._store
        return seq, _totals(store.state), store.get(intent_id)

    def cancel_reservation(self, intent_id: str, timestamp: datetime | str | None = None) -> Record:
        """Release the unfilled remainder of ``intent_id``'s reservation."""
        ts = _opt_timestamp(timestamp)
        with self._lock:
            seq, before, trade = self._begin_lifecycle("cancel", intent_id, ts)
            store = self._store
            released = 0
            if trade is None:
                status = store.ended(intent_id) or "unknown"
            elif trade.released is not None:
                status = trade.released
            else:
                released = store.release(trade, "cancelled")
                status = "cancelled"
            rec = self._lifecycle("cancel", seq, trade, intent_id)
            rec.update(status=status, released_risk_abs=from_units(released), before=before)
            self._emit(rec)
            return rec

    def close_position(self, intent_id: str, timestamp: datetime | str | None = None) -> Record:
        """End ``intent_id``'s trade: release its active and reserved risk and its slot."""
        ts = _opt_timestamp(timestamp)
        with self._lock:
            seq, before, trade = self._begin_lifecycle("close", intent_id, ts)
            store = self._store
            active = reserved = 0
            if trade is None:
                status = store.ended(intent_id) or "unknown"
            else:
                active, reserved = store.close(trade)
                status = "closed"
            rec = self._lifecycle("close", seq, trade, intent_id)
            rec.update(
                status=status,
                released_active_risk_abs=from_units(active),
                released_reserved_risk_abs=from_units(reserved),
                before=before,
            )
            if trade is not None and logger.isEnabledFor(_INFO):
                logger.info(
                    "[RISK:STRATEGY] %s %s closed %s → RELEASED active=%s reserved=%s",
                    trade.strategy,
                    trade.symbol,
                    intent_id,
                    from_units(active),
                    from_units(reserved),
                )
            self._emit(rec)
            return rec

    # --- equity, modes, envelopes --------------------------------------------------------
    def _mode_info(self) -> tuple[str, str, str]:
        info = self._policy.mode_of(self._store.state)
        return info.name, info.source, info.reason

    def _envelope(self) -> PortfolioConstraintEnvelope:
        state, policy = self._store.state, self._policy
        cache = self._env_cache
        if cache is not None and cache[0] == state.version and cache[1] is policy:
            return cache[2]
        env = policy.envelope(state)
        self._env_cache = (state.version, policy, env)
        return env

    def _after_mode_change(self, force: bool) -> PortfolioConstraintEnvelope:
        env = self._envelope()
        mode = self._mode_info()[0]
        if force or mode != self._last_mode:
            self._last_mode = mode
            self._broadcast(env)
        return env

    def _apply_equity(
        self, equity: float, peak_equity: float | None, ts: datetime | None
    ) -> Record:
        if (
            isinstance(equity, bool)
            or not isinstance(equity, int | float)
            or not equity == equity
            or equity in (float("inf"), float("-inf"))
            or equity < 0
        ):
            raise EventError(f"equity must be a finite number >= 0, got {equity!r}")
        if peak_equity is not None and (
            not isinstance(peak_equity, int | float) or not 0 <= peak_equity < float("inf")
        ):
            raise EventError(f"peak_equity must be a finite number >= 0, got {peak_equity!r}")
        seq = self._next()
        event: Record = {
            "type": "equity",
            "equity": equity,
            "timestamp": ts and ts.isoformat(),
        }
        if peak_equity is not None:
            event["peak_equity"] = peak_equity
        self._write(event)
        self._advance(ts, seq)
        before_mode = self._mode_info()
        self._store.set_equity(float(equity), None if peak_equity is None else float(peak_equity))
        env = self._after_mode_change(False)
        state = self._store.state
        rec: Record = {
            "kind": "equity",
            "seq": seq,
            "ts": ts and ts.isoformat(),
            "equity": state.equity,
            "peak_equity": state.peak_equity,
            "drawdown": state.drawdown,
            "mode_before": before_mode[0],
            "mode": env.portfolio_mode,
            "envelope": env.model_dump(mode="json"),
        }
        if before_mode[0] != env.portfolio_mode and logger.isEnabledFor(_INFO):
            logger.info(
                "[RISK:MODE] drawdown=%s → %s (%s)",
                round(state.drawdown, 6),
                env.portfolio_mode.upper(),
                self._mode_info()[2],
            )
        self._emit(rec)
        return rec

    def update_equity(
        self,
        equity: float,
        timestamp: datetime | str | None = None,
        *,
        peak_equity: float | None = None,
    ) -> Record:
        """Track equity, peak and drawdown; a drawdown tier change broadcasts the new envelope."""
        ts = _opt_timestamp(timestamp)
        with self._lock:
            return self._apply_equity(equity, peak_equity, ts)

    def set_portfolio_mode(
        self,
        mode: Literal["normal", "defensive", "risk_off"] | None,
        reason: str = "",
        timestamp: datetime | str | None = None,
    ) -> PortfolioConstraintEnvelope:
        """Set (or with ``None`` clear) the mode override; the stricter of it and the
        drawdown mode applies. Every subscriber gets the new envelope before this returns."""
        if mode is not None and mode not in MODE_SEVERITY:
            raise EventError(f"unknown mode {mode!r} (expected one of {', '.join(MODE_SEVERITY)})")
        ts = _opt_timestamp(timestamp)
        with self._lock:
            seq = self._next()
            self._write(
                {
                    "type": "mode",
                    "mode": mode,
                    "reason": reason,
                    "timestamp": ts and ts.isoformat(),
                }
            )
            self._advance(ts, seq)
            before = self._mode_info()
            self._store.set_override(mode, reason or None)
            env = self._after_mode_change(True)
            after = self._mode_info()
            if logger.isEnabledFor(_INFO):
                logger.info(
                    "[RISK:MODE] override=%s (%s) → %s",
                    mode,
                    reason or "-",
                    env.portfolio_mode.upper(),
                )
            self._emit(
                {
                    "kind": "mode",
                    "seq": seq,
                    "ts": ts and ts.isoformat(),
                    "override": mode,
                    "reason": reason,
                    "mode_before": before[0],
                    "mode": after[0],
                    "mode_source": after[1],
                    "mode_reason": after[2],
                    "envelope": env.model_dump(mode="json"),
                }
            )
            return env

    def constraints(self) -> PortfolioConstraintEnvelope:
        """The current envelope (without pushing it)."""
        with self._lock:
            return self._envelope()

    def broadcast_constraints(self) -> PortfolioConstraintEnvelope:
        """Push the current envelope to every subscriber; returns it."""
        with self._lock:
            env = self._envelope()
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
            env = self._envelope()
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
            store, state = self._store, self._store.state
            mode, source, reason = self._mode_info()
            clock = store.clock

            def table(buckets: Mapping[str, Any]) -> dict[str, Any]:
                return {k: buckets[k].totals() for k in sorted(buckets)}

            return {
                "policy": dict(self._policy_dict),
                "clock": clock.isoformat() if clock else None,
                "equity": state.equity,
                "peak_equity": state.peak_equity,
                "drawdown": state.drawdown,
                "mode": mode,
                "mode_source": source,
                "mode_reason": reason,
                "mode_override": state.mode_override,
                "totals": state.totals(),
                "strategies": table(state.strategies),
                "symbols": table(state.symbols),
                "cohorts": table(state.cohorts),
                "trades": [t.as_dict() for t in store.trades()],
                "envelope": self._envelope().model_dump(mode="json"),
                "seq": self._seq,
            }

    # --- policy reload -------------------------------------------------------------------
    def reload(self, path: str | os.PathLike[str] | None = None) -> Record:
        """Swap in a new policy version atomically, keeping the live state.

        A file that fails to load is refused: the old policy stays in force and
        the returned record has ``ok: false`` and the error.
        """
        target = str(path if path is not None else self._policy.path)
        try:
            raw = Path(target).read_bytes()
            policy = load_policy_text(raw, target)
            source: str | None = raw.decode("utf-8")
        except Exception as exc:
            rec: Record = {
                "kind": "reload",
                "ok": False,
                "path": target,
                "error": str(exc),
                "policy": dict(self._policy_dict),
            }
            logger.error(
                "[RISK:POLICY] reload of %s refused, keeping %s: %s", target, self._policy, exc
            )
            self._emit(rec)
            return rec
        return self.use_policy(policy, source)

    def use_policy(self, policy: Policy, source: str | None = None) -> Record:
        """Put a compiled policy in force (what ``reload`` does after loading)."""
        with self._lock:
            seq = self._next()
            self._write(_policy_event(policy, source))
            return self._swap(policy, seq)

    def _swap(self, policy: Policy, seq: int) -> Record:
        old = self._policy_dict
        self._policy = policy
        self._policy_dict = self._ref_dict(policy)
        self._ttl = _ttl(policy)
        env = self._after_mode_change(True)
        logger.info(
            "[RISK:POLICY] %s v%s → %s v%s",
            old["name"],
            old["version"],
            policy.name,
            policy.version,
        )
        rec: Record = {
            "kind": "reload",
            "seq": seq,
            "ok": True,
            "path": policy.path,
            "previous": old,
            "policy": dict(self._policy_dict),
            "mode": env.portfolio_mode,
        }
        self._emit(rec)
        return rec

    def watch(
        self, path: str | os.PathLike[str] | None = None, interval: float = 1.0
    ) -> PolicyWatcher:
        """Start a polling watcher that reloads the policy file when it changes."""
        watcher = PolicyWatcher(self, path if path is not None else self._policy.path, interval)
        watcher.start()
        return watcher

    # --- events --------------------------------------------------------------------------
    def apply(self, event: Mapping[str, Any]) -> Record | None:
        """Apply one event dict (see the module docstring); returns the decision record
        for an ``intent`` and ``None`` for every other event."""
        kind = event.get("type")
        if kind == "intent":
            return self._request(event, True)[1]
        if kind == "fill":
            self.on_fill_update(event)
        elif kind == "cancel":
            self.cancel_reservation(_field(event, "intent_id"), event.get("timestamp"))
        elif kind == "close":
            self.close_position(_field(event, "intent_id"), event.get("timestamp"))
        elif kind == "equity":
            peak = event.get("peak_equity")
            self.update_equity(
                _field(event, "equity", (int, float)), event.get("timestamp"), peak_equity=peak
            )
        elif kind == "mode":
            self.set_portfolio_mode(
                event.get("mode"), event.get("reason") or "", event.get("timestamp")
            )
        elif kind == "tick":
            self.advance_time(_field(event, "timestamp", (str, datetime)))
        elif kind == "policy":
            policy = policy_from_event(event)
            src = event.get("source")
            self.use_policy(policy, src if isinstance(src, str) else None)
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


def _ttl(policy: Policy) -> timedelta | None:
    ttl = policy.reservation_ttl_sec
    return None if ttl is None else timedelta(seconds=ttl)


def _field(event: Mapping[str, Any], key: str, types: tuple[type, ...] = (str,)) -> Any:
    value = event.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, types):
        raise EventError(f"{event.get('type')} event: `{key}` is missing or malformed")
    return value


class PolicyWatcher:
    """Polls a policy file and reloads the controller when its content changes.

    ``poll()`` does one check synchronously (returns the reload record or
    ``None``); ``start()`` runs it every ``interval`` seconds on a daemon thread.
    A file that fails to load is reported once per change and the old policy
    stays in force.
    """

    def __init__(
        self,
        controller: PortfolioController,
        path: str | os.PathLike[str],
        interval: float = 1.0,
        on_reload: Callable[[Record], None] | None = None,
    ) -> None:
        self.controller = controller
        self.path = str(path)
        self.interval = interval
        self.on_reload = on_reload
        self._seen: str | None = controller.policy.content_hash
        self._signature: tuple[int, int] | None = self._stat()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def poll(self) -> Record | None:
        """Check the file once; reload if its content changed since the last look."""
        signature = self._stat()
        if signature is None or signature == self._signature:
            return None
        self._signature = signature
        try:
            digest = "sha256:" + hashlib.sha256(Path(self.path).read_bytes()).hexdigest()
        except OSError:
            return None
        if digest == self._seen:
            return None
        self._seen = digest
        rec = self.controller.reload(self.path)
        if self.on_reload is not None:
            self.on_reload(rec)
        return rec

    def start(self) -> None:
        if self._thread is not None:
            return
        self.controller._watchers.append(self)
        self._thread = threading.Thread(target=self._run, name="policy-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                logger.exception("policy watcher failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self in self.controller._watchers:
            self.controller._watchers.remove(self)


__all__ = [
    "DECISION_KEYS",
    "DUPLICATE_INTENT_CODE",
    "INVALID_INTENT_CODE",
    "EventError",
    "FillUpdate",
    "PolicyWatcher",
    "PortfolioController",
    "canonical",
    "parse_timestamp",
    "policy_from_event",
]
