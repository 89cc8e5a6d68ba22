"""The decision logic's fingerprint, recorded in every run's history (issue 17).

Temporal's Replayer compares the commands a workflow issues, not the answers its
Updates gave: a worker whose decision logic changed (say, approved amounts halved)
would replay a recorded history clean and rebuild a state that no longer matches
what the callers were told. So each run records which decision logic made it:
:func:`fingerprint` decides a fixed probe (a small policy, intents that approve,
clip and reject) with the code at hand and hashes the decisions, and the workflow
records ``decision-logic-<fingerprint>`` with ``workflow.patched`` at the start of
each run. A replaying worker whose logic gives other decisions looks for a
different marker, does not find it, and fails the workflow task with a
non-determinism error: loudly, before it decides anything. (A run recorded
before this guard carries no ``decision-logic-guard`` marker and is not checked.)

A deliberate change of decision logic is deployed as the operations guide says:
drain the portfolio (it resumes on the new version from its last snapshot), or
express the change as a new policy version (``reload``: journaled, explicit).
"""

from __future__ import annotations

import hashlib
import json

from ..control.core import ControlCore
from ..engine.policy import load_policy_text

GUARD = "decision-logic-guard"
PREFIX = "decision-logic-"

PROBE_POLICY = """\
api_version: policy-engine/v1
name: decision-logic-probe
version: 1
params:
  heat_cap: 2%
  symbol_cap: 700
reservation_ttl_sec: 300
min_risk_abs: 10
strategies:
  A: {enabled: true, max_trades: 2}
  B: {enabled: false, max_trades: 1}
cohorts:
  C: [X, Y]
modes:
  normal: {risk_multiplier: 1.0}
  defensive: {risk_multiplier: 0.5, when: "portfolio.drawdown >= 5%"}
envelope:
  max_new_risk_abs: params.heat_cap * portfolio.equity * mode.risk_multiplier - portfolio.heat
rules:
  - id: strategy-enabled
    category: STRATEGY
    require: strategy.enabled
    code: rejected_strategy_disabled
    message: disabled
  - id: strategy-max-trades
    category: STRATEGY
    require: strategy.active_trades < strategy.max_trades
    code: rejected_strategy_limit
    message: limit reached
  - id: symbol-cap
    category: SYMBOL
    limit: params.symbol_cap * mode.risk_multiplier - symbol.heat
    on_exceed: clip
    code: rejected_symbol_cap
    message: capped
  - id: portfolio-heat
    category: HEAT
    limit: params.heat_cap * portfolio.equity * mode.risk_multiplier - portfolio.heat
    on_exceed: clip
    code: rejected_heat
    message: capped
"""

_T = "2026-01-05T09:00:00+00:00"
# approved in full, clipped by the symbol cap, clipped by heat, disabled, over the trade limit
_PROBES = [
    ("p1", "A", "X", 300.0),
    ("p2", "A", "X", 600.0),
    ("p3", "A", "Y", 900.0),
    ("p4", "B", "Y", 100.0),
]


def fingerprint() -> str:
    """A short hash of the decisions this code makes on the fixed probe."""
    core = ControlCore(load_policy_text(PROBE_POLICY, "<decision-logic-probe>"))
    core.apply({"type": "equity", "equity": 50_000, "peak_equity": None, "timestamp": _T})
    seen = []
    for iid, strategy, symbol, risk in _PROBES:
        intent = {
            "type": "intent",
            "intent_id": iid,
            "strategy": strategy,
            "symbol": symbol,
            "side": "long",
            "requested_risk_abs": risk,
            "timestamp": _T,
        }
        decision = core.apply(intent, decide=True).decision
        assert decision is not None
        seen.append(
            [decision.decision_code, decision.approved_risk_abs, decision.rule_id, decision.mode]
        )
    text = json.dumps(seen, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


__all__ = ["GUARD", "PREFIX", "PROBE_POLICY", "fingerprint"]
