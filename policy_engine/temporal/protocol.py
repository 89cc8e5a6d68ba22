"""The wire between the control workflow and its callers: names, ids and the run input.

Everything the workflow, the client, the instrument helpers and the worker must
agree on lives here, once: the workflow id of a portfolio, the names of every
Update, Signal and Query, the deterministic Update ids that make retries
idempotent, and :class:`ControlStart`, the workflow's input (a fresh start, or
the exact state carried over a continue-as-new). Pure: no temporalio import, no
clock, no randomness, so it runs unchanged inside the workflow sandbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..control.events import DEFAULT_MAX_SKEW, FillUpdate, Record, canonical

WORKFLOW_TYPE = "PortfolioControlWorkflow"
WORKFLOW_ID_PREFIX = "portfolio-control/"
DEFAULT_TASK_QUEUE = "policy-engine"

# Updates (the caller needs the outcome, the order is total, bad input is refused
# before it enters history).
REQUEST_ALLOCATION = "request_allocation"
ON_FILL_UPDATE = "on_fill_update"
CANCEL_RESERVATION = "cancel_reservation"
CLOSE_POSITION = "close_position"
UPDATE_EQUITY = "update_equity"
SET_PORTFOLIO_MODE = "set_portfolio_mode"
RESET_LATCH = "reset_latch"
MARK = "mark"  # a symbol's last price (issue 23): temporal/marks.py
RELOAD = "reload"
BROADCAST_CONSTRAINTS = "broadcast_constraints"
REQUEST_CANCEL = "request_cancel"  # decided order requests (temporal/orders.py)
REQUEST_MODIFY = "request_modify"
REQUEST_GROUP = "request_group"  # an order group, decided all or none
CANCEL_GROUP = "cancel_group"
UPDATE_BALANCE = "update_balance"  # a currency's balance
# Signals to the control workflow: a workflow can signal another workflow but not
# update it, and (un)registering is idempotent and needs no answer.
REGISTER = "register"
UNREGISTER = "unregister"
# The execution ledger's signals (seed 004: the ledger *signals* actual fills and releases).
# The same steps as the Updates of the same meaning, without an answer: a refusal is
# logged and kept for the `ledger` query, and never fails the workflow.
LEDGER_FILL = "ledger_fill"
LEDGER_CANCEL = "ledger_cancel"
LEDGER_CLOSE = "ledger_close"
# The signal every registered instrument workflow receives with each envelope.
ENVELOPE_SIGNAL = "constraint_envelope"
# Queries (read-only, never in history).
GET_PORTFOLIO_STATE = "get_portfolio_state"
CONSTRAINTS = "constraints"
SNAPSHOT = "snapshot"
JOURNAL = "journal"
SUBSCRIBERS = "subscribers"
INVALID_INTENT_DECISION = "invalid_intent_decision"
LEDGER = "ledger"
# Patches (workflow.patched): a change in the commands the workflow issues, kept replayable
# for histories recorded before it. Remove one only when no run recorded before it is live.
COALESCED_BROADCAST = "coalesced-broadcast"  # lifecycle envelope changes delivered beside
# A run continues as new without waiting for the coalesced envelope: it carries it instead.
CARRY_PENDING_ENVELOPE = "carry-pending-envelope"
# What a continue-as-new would carry (the state `--resume` restarts a closed portfolio from).
CARRY = "carry"

# Continue-as-new after this many accepted events in one run (see the README's
# Temporal section for the history this makes), and remember this many recent
# decisions so a retry arriving after a continue-as-new gets its original answer.
DEFAULT_EVENTS_PER_RUN = 500
# Temporal refuses more than 2,000 Updates in one run (limit.workflowExecution.
# maxTotalUpdates); a run's accepted events are a subset of its Updates.
MAX_EVENTS_PER_RUN = 1500
DEFAULT_DECISION_MEMORY = 1000
# A carried snapshot larger than this (JSON bytes) travels compressed: Temporal
# refuses payloads over 2 MB, and the core remembers up to 8,192 ended trades (with their fill ids).
COMPRESS_ABOVE = 64 * 1024


def workflow_id(portfolio: str) -> str:
    """The id of ``portfolio``'s control workflow (one per portfolio)."""
    name = portfolio.strip()
    if not name or name != portfolio or any(c.isspace() for c in name):
        raise ValueError(f"portfolio name must be non-empty text without spaces: {portfolio!r}")
    return WORKFLOW_ID_PREFIX + name


def digest(event: Record) -> str:
    """A short content hash of an event's journal form (what identifies a retry)."""
    return hashlib.sha256(canonical(event).encode("utf-8")).hexdigest()[:16]


def intent_update_id(event: Record) -> str:
    """The Update id of an intent: its id and its content, so a retry of the same intent
    is deduplicated by Temporal while a new intent reusing a closed trade's id is not."""
    return f"intent:{event['intent_id']}:{digest(event)}"


def fill_update_id(fill: FillUpdate) -> str:
    """The Update id of a fill: a fill id names one execution of one intent."""
    return f"fill:{fill.intent_id}:{fill.fill_id}"


def request_update_id(name: str, request: dict[str, Any], request_id: str | None) -> str | None:
    """The idempotency key of a mutating call: the caller's ``request_id``; else, when the
    call carries a timestamp, its content (re-sent after a crash it is the same call);
    else ``None`` (one random id per call: two identical calls without a time are two)."""
    if request_id is not None:
        if not isinstance(request_id, str) or not request_id:
            raise ValueError("request_id must be a non-empty string")
        return f"{name}:{request_id}"
    if request.get("timestamp") is None:
        return None
    return f"{name}:{digest(request)}"


def pack(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` for a workflow input: as is when small, zlib-compressed when large."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    if len(text) <= COMPRESS_ABOVE:
        return {"json": data}
    raw = zlib.compress(text.encode("utf-8"), 6)
    return {"zlib": base64.b64encode(raw).decode("ascii")}


def unpack(packed: dict[str, Any]) -> dict[str, Any]:
    """What :func:`pack` was given."""
    if "json" in packed:
        data: dict[str, Any] = packed["json"]
        return data
    loaded: dict[str, Any] = json.loads(zlib.decompress(base64.b64decode(packed["zlib"])))
    return loaded


@dataclass
class ControlStart:
    """The control workflow's input.

    A fresh start names the policy (its text and content hash) and the opening
    equity. After a continue-as-new, ``carry`` holds the previous run's exact
    state: the core's snapshot, the registered instrument workflows, the last
    envelope pushed, and the memory of recent decisions.
    """

    portfolio: str
    policy_text: str = ""
    policy_path: str = "<policy>"
    policy_hash: str = ""
    equity: float = 0.0
    peak_equity: float | None = None
    events_per_run: int = DEFAULT_EVENTS_PER_RUN
    decision_memory: int = DEFAULT_DECISION_MEMORY
    # Refuse event timestamps more than this many seconds ahead of workflow.now()
    # (None: no bound, for a simulation over future times).
    max_skew_seconds: float | None = DEFAULT_MAX_SKEW.total_seconds()
    carry: dict[str, Any] | None = field(default=None)


__all__ = [
    "BROADCAST_CONSTRAINTS",
    "CANCEL_GROUP",
    "CANCEL_RESERVATION",
    "CARRY",
    "CARRY_PENDING_ENVELOPE",
    "CLOSE_POSITION",
    "COALESCED_BROADCAST",
    "COMPRESS_ABOVE",
    "CONSTRAINTS",
    "DEFAULT_DECISION_MEMORY",
    "DEFAULT_EVENTS_PER_RUN",
    "DEFAULT_TASK_QUEUE",
    "ENVELOPE_SIGNAL",
    "GET_PORTFOLIO_STATE",
    "INVALID_INTENT_DECISION",
    "JOURNAL",
    "LEDGER",
    "LEDGER_CANCEL",
    "LEDGER_CLOSE",
    "LEDGER_FILL",
    "MARK",
    "MAX_EVENTS_PER_RUN",
    "ON_FILL_UPDATE",
    "REGISTER",
    "RELOAD",
    "REQUEST_ALLOCATION",
    "REQUEST_CANCEL",
    "REQUEST_GROUP",
    "REQUEST_MODIFY",
    "RESET_LATCH",
    "SET_PORTFOLIO_MODE",
    "SNAPSHOT",
    "SUBSCRIBERS",
    "UNREGISTER",
    "UPDATE_BALANCE",
    "UPDATE_EQUITY",
    "WORKFLOW_ID_PREFIX",
    "WORKFLOW_TYPE",
    "ControlStart",
    "digest",
    "fill_update_id",
    "intent_update_id",
    "pack",
    "request_update_id",
    "unpack",
    "workflow_id",
]
