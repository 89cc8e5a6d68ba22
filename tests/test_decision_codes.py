"""The decision-code registry: every code the engine emits is registered, documented, and
written nowhere else.

Codes are part of journals, records and metric labels: one that is emitted but not
registered (or registered but not documented) is a code a user cannot look up.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from policy_engine import DECISION_CODES, PortfolioController
from policy_engine.decision_codes import rule_code

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "policy_engine"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

# One rule of each outcome: a clip, a rejection with its default code, a rule that fails to
# evaluate for an undeclared strategy (fail closed), and a pace that defers.
POLICY = """\
api_version: policy-engine/v1
name: codes
version: 1
strategies:
  S: {max_risk: 100}
windows:
  asks_1m: {count: approvals, per: symbol, over: 1m}
rules:
  - id: per-trade-cap
    limit: strategy.max_risk
    on_exceed: clip
  - id: no-x
    require: intent.symbol != "X"
  - id: pace
    require: symbol.asks_1m < 2
    on_reject: defer
  - id: cancel-slice
    applies_to: [cancel]
    limit: 10
    on_exceed: clip
"""


def _intent(
    iid: str, strategy: str = "S", symbol: str = "A", risk: float = 50, t: float = 0
) -> dict[str, object]:
    return {
        "intent_id": iid,
        "strategy": strategy,
        "symbol": symbol,
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": (T0 + timedelta(seconds=t)).isoformat(),
    }


def test_every_code_the_engine_emits_is_registered(tmp_path: Path) -> None:
    """Driving a controller through each way an intent is answered emits exactly the
    registered codes, plus the rule's own (its default, ``rejected_<id>``)."""
    policy = tmp_path / "codes.yaml"
    policy.write_text(POLICY)
    ctl = PortfolioController(policy, equity=100_000, clock=lambda: T0)
    answers = [
        ctl.request_allocation(_intent("full")),
        ctl.request_allocation(_intent("clipped", risk=500, t=1)),
        ctl.request_allocation(_intent("rule", symbol="X", t=2)),
        ctl.request_allocation(_intent("error", strategy="UNDECLARED", t=3)),
        ctl.request_allocation(_intent("full", t=4)),  # the same id again
        ctl.request_allocation({"intent_id": "bad", "strategy": "S"}),
        ctl.request_allocation(_intent("future", t=3600)),  # beyond max_skew
        ctl.request_allocation(_intent("later", t=5)),  # a third on A within the minute
        ctl.request_allocation(_intent("ghost", symbol="B", t=6) | {"position_id": "nope"}),
    ]
    ctl.on_fill_update(
        {"intent_id": "full", "fill_id": "f", "filled_risk_abs": 50, "timestamp": T0.isoformat()}
    )
    # a reduce-only short of 60 against the 50 filled of long position `full`
    reduce = _intent("too-much", risk=60, t=7) | {"side": "short", "reduce_only": True}
    answers.append(ctl.request_allocation(reduce | {"position_id": "full"}))
    codes = [a.decision_code for a in answers]
    # a cancel request a rule would clip (a cancel is all or nothing)
    cancel = ctl.request_cancel("clipped", (T0 + timedelta(seconds=6)).isoformat())
    codes.append(str(cancel["decision_code"]))
    # an order group one of whose members a rule rejects: the others say `rejected_group`
    at = (T0 + timedelta(seconds=7)).isoformat()
    group = ctl.request_group(
        "g", [{**_intent("g1"), "timestamp": at}, {**_intent("g2", symbol="X"), "timestamp": at}]
    )
    codes.append(str(group["decision_code"]))
    assert codes == [
        "approved_full",
        "approved_clipped",
        "rejected_no_x",
        "rejected_eval_error",
        "rejected_duplicate_intent",
        "rejected_invalid_intent",
        "rejected_clock_skew",
        "deferred",
        "rejected_unknown_position",
        "rejected_reduce_only_position",
        "rejected_request_clipped",
        "rejected_group",
    ]
    assert answers[7].context["retry_after"] == 55  # A's first approval leaves at t=60
    assert set(codes) - {rule_code("no-x")} == set(DECISION_CODES)
    assert rule_code("Per Trade--Cap") == "rejected_per_trade_cap"


def test_every_registered_code_is_documented_with_its_meaning() -> None:
    """docs/policy-format.md has one row per code, with the registry's words."""
    text = (ROOT / "docs" / "policy-format.md").read_text("utf-8")
    rows = re.findall(r"^\| `((?:approved|rejected)_[a-z_]+|deferred)` \| (.+) \|$", text, re.M)
    assert dict(rows) == dict(DECISION_CODES)


def test_no_module_spells_a_registered_code_itself() -> None:
    """Every use refers to the registry: no other module has a code as a string literal."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "decision_codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if node.value in DECISION_CODES:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert offenders == []
