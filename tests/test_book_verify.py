"""`policy verify` on issue 23's names: notional and unrealized P&L, the group an intent is
decided in, balances per currency and the position an intent names have exact solver models
(verify/book.py): each property is decided, and a counterexample replays in the engine (as a
snapshot, an intent and its group) and is written as a `policy test` case that passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from policy_engine.cli import cli
from policy_engine.engine.policy import load_policy
from policy_engine.testing.runner import run_file
from policy_engine.verify import BUILTIN, verify

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook"


def test_a_notional_cap_is_decided_and_an_intent_without_notional_is_the_counterexample() -> None:
    results = {
        r.property: r
        for r in verify(load_policy(COOKBOOK / "gross_exposure.yaml"), list(BUILTIN), 60)
    }
    assert {k: r.status for k, r in results.items() if k != "never-errors"} == dict.fromkeys(
        [k for k in BUILTIN if k != "never-errors"], "proved"
    )
    errors = results["never-errors"]
    assert errors.status == "violated"  # by design: an order without a notional is refused
    (case,) = errors.cases
    assert "requested_notional_abs" not in case.intent
    assert case.decision["decision_code"] == "rejected_eval_error"


def test_a_drawdown_from_marks_is_proved_and_a_position_is_decided() -> None:
    marks = verify(load_policy(COOKBOOK / "security_drawdown.yaml"), list(BUILTIN), 60)
    assert {r.property: r.status for r in marks} == dict.fromkeys(BUILTIN, "proved")
    results = verify(load_policy(COOKBOOK / "positions_by_id.yaml"), list(BUILTIN), 60)
    statuses = {r.property: r.status for r in results}
    assert statuses.pop("never-errors") == "violated"  # by design: no such open position
    assert set(statuses.values()) == {"proved"}
    (case,) = next(r for r in results if r.property == "never-errors").cases
    assert "position_id" in case.intent and "positions" not in case.state
    assert case.decision["decision_code"] == "rejected_eval_error"


def _policy(tmp_path: Path, rules: str, head: str = "") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"api_version: policy-engine/v1\nname: p\nversion: 1\n{head}rules:\n{rules}")
    return path


def _emitted(tmp_path: Path, path: Path, prop: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The property's counterexample (violated), and its case as `--emit-tests` writes it
    (which `policy test` passes: the engine decides it as the solver predicted)."""
    emitted = tmp_path / "found_test.yaml"
    args = ["verify", str(path), "--property", prop, "--emit-tests", str(emitted)]
    out = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert out.exit_code == 1, out.output
    (result,) = json.loads(out.output)["results"]
    assert result["status"] == "violated", result
    report = run_file(str(emitted))
    assert report.error is None and report.results and all(t.passed for t in report.results)
    (case,) = yaml.safe_load(emitted.read_text())["cases"]
    return result["counterexample"][0], case


def test_group_names_are_decided_and_a_counterexample_is_a_group(tmp_path: Path) -> None:
    # an allow on a group of two or more lets a member past the heat cap
    rules = (
        "  - id: brackets\n    allow: group.count >= 2 and group.risk <= 3 * intent.risk\n"
        "  - id: heat-cap\n    limit: 1000 - portfolio.heat\n"
    )
    found, case = _emitted(tmp_path, _policy(tmp_path, rules), "caps-hold")
    assert found["intent"]["group"]["count"] >= 2
    assert case["group"]["count"] >= 2 and "group" not in case["intent"]
    # the same cap, with the group read only inside its bounds: proved
    sound = "  - id: heat-cap\n    limit: 1000 - portfolio.heat - 0 * group.risk\n"
    (proved,) = verify(load_policy(_policy(tmp_path, sound)), ["caps-hold"], 60)
    assert proved.status == "proved"


def test_balances_are_decided_and_a_counterexample_states_them(tmp_path: Path) -> None:
    head = "currencies: [USD, EUR]\n"
    # an allow on a large free balance in the intent's quote currency skips the heat cap
    rules = (
        "  - id: rich\n    allow: has(balance.quote.free) and balance.quote.free > 1000000\n"
        "  - id: heat-cap\n    limit: 1000 - portfolio.heat\n"
    )
    found, _case = _emitted(tmp_path, _policy(tmp_path, rules, head), "caps-hold")
    currency = found["intent"]["quote_currency"]
    assert currency in ("USD", "EUR") and found["state"]["balances"][currency]["free"] > 1000000
    # a guarded read of a declared currency never errors; an unguarded one may (unreported)
    guarded = "  - id: r\n    require: not has(balance.EUR.locked) or balance.EUR.locked >= 0\n"
    (ok,) = verify(load_policy(_policy(tmp_path, guarded, head)), ["never-errors"], 60)
    assert ok.status == "proved"


def test_a_position_read_under_has_never_errors(tmp_path: Path) -> None:
    rules = (
        "  - id: winners\n    when: has(intent.position_id)\n"
        "    require: position.unrealized_pnl >= 0 and position.size > 0\n"
    )
    (result,) = verify(load_policy(_policy(tmp_path, rules)), ["never-errors"], 60)
    assert result.status == "violated"  # a named position that is not open fails closed
    (case,) = result.cases
    assert "positions" not in case.state and case.intent.get("position_id")
    # a position that is open: its fields replay into the snapshot
    side = "  - id: r\n    when: has(intent.position_id)\n    allow: position.side == 'short'\n"
    found, _case = _emitted(
        tmp_path,
        _policy(tmp_path, side + "  - id: heat-cap\n    limit: 1000 - portfolio.heat\n"),
        "caps-hold",
    )
    (position,) = found["state"]["positions"].values()
    assert position["side"] == "short" and position["size"] > 0


def test_when_missing_approve_is_unknown_never_a_wrong_proof(tmp_path: Path) -> None:
    # a missing position lets the intent past the cap: taken for a rejection, caps-hold
    # would be "proved" though the engine approves 5000 over a cap of 1000
    rules = (
        "  - id: cap\n    when_missing: approve\n"
        "    limit: 1000 - portfolio.heat + 0 * position.size\n"
    )
    results = verify(load_policy(_policy(tmp_path, rules)), ["caps-hold", "never-errors"], 60)
    assert [r.status for r in results] == ["unknown", "unknown"]
    assert all("when_missing" in r.reason for r in results)
