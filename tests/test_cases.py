"""Table-driven decision tests: every decision test file the repository ships.

The files are in the public `policy test` format (docs/testing.md): `policies/*_test.yaml`
test the bundled policies, `tests/cases/*_test.yaml` the language itself. `policy test`
checks each case's `expect`; this module runs the same files as pytest cases and holds the
repository's own cases to more: every case says what it proves (`note`) and pins
`decision_code`, `approved`, `approved_risk_abs` and `rule_id`; the reference interpreter
reaches the same outcome as the compiled chain; the full decision builds and serialises;
evaluation leaves the snapshot alone.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from casefiles import CASE_FILES, case_inputs, case_policy

from policy_engine import Policy
from policy_engine.engine.verdict import Verdict
from policy_engine.testing.runner import run_file

REQUIRED = ("decision_code", "approved", "approved_risk_abs", "rule_id")
OPTIONAL = (
    "context",
    "clips",
    "warnings",
    "warning_messages",
    "mode",
    "mode_source",
    "headroom",
    "reasons_contain",
    "log_line",
)


@cache
def _file(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    return data


def _policy(path: Path, case: dict[str, Any]) -> Policy:
    return case_policy(path, case)


def _collect() -> list[Any]:
    params = []
    for path in CASE_FILES:
        for case in _file(path).get("cases") or []:
            params.append(pytest.param(path, case, id=f"{path.stem}:{case['id']}"))
    return params


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_every_test_file_passes_policy_test(path: Path) -> None:
    """`policy test` runs the file: every case and scenario passes."""
    report = run_file(str(path))
    assert report.error is None, report.error
    failed = [(t.id, t.failures, t.explanation) for t in report.results if not t.passed]
    assert failed == []
    assert report.results


def _close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-9)
    return bool(actual == expected)


def _check(verdict: Verdict, expect: dict[str, Any]) -> None:
    got = {
        "decision_code": verdict.decision_code,
        "approved": verdict.approved,
        "approved_risk_abs": verdict.approved_risk_abs,
        "rule_id": verdict.rule_id,
    }
    want = {k: expect[k] for k in REQUIRED}
    assert got["decision_code"] == want["decision_code"], (got, verdict.reasons)
    assert got == want or all(_close(got[k], want[k]) for k in REQUIRED), (got, verdict.reasons)
    context = verdict.context
    for key, value in (expect.get("context") or {}).items():
        assert key in context, f"context has no `{key}`: {context}"
        assert _close(context[key], value), f"context[{key!r}] = {context[key]!r}, not {value!r}"
    if "clips" in expect:
        clips = [[c.rule_id, c.from_risk, c.to_risk] for c in verdict.clips]
        assert len(clips) == len(expect["clips"]), clips
        for have, need in zip(clips, expect["clips"], strict=True):
            assert have[0] == need[0] and _close(have[1], need[1]) and _close(have[2], need[2]), (
                clips
            )
    if "warnings" in expect:
        assert [w.rule_id for w in verdict.warnings] == expect["warnings"]
    for rule_id, fragment in (expect.get("warning_messages") or {}).items():
        messages = [w.message for w in verdict.warnings if w.rule_id == rule_id]
        assert messages and fragment in messages[0], messages
    if "mode" in expect:
        assert verdict.mode == expect["mode"]
    if "mode_source" in expect:
        assert verdict.mode_source == expect["mode_source"]
    if "headroom" in expect:
        assert _close(verdict.headroom, expect["headroom"]), verdict.headroom
    reasons = "\n".join(verdict.reasons)
    for fragment in expect.get("reasons_contain") or ():
        assert fragment in reasons, reasons
    if "log_line" in expect:
        assert verdict.log_line() == expect["log_line"]


@pytest.mark.parametrize(("path", "case"), _collect())
def test_case(path: Path, case: dict[str, Any]) -> None:
    """The policy decides the case's intent exactly as the case's `expect` says (see its note)."""
    assert case.get("note"), "every case says what it proves"
    unknown = set(case["expect"]) - set(REQUIRED) - set(OPTIONAL)
    assert not unknown, f"unknown expect keys {unknown}"
    assert all(k in case["expect"] for k in REQUIRED), "decision_code, approved, amount, rule_id"
    policy = _policy(path, case)
    intent, state = case_inputs(_file(path), case, policy.intent_model)
    before = state.model_dump_json()
    verdict = policy.evaluate(intent, state)
    _check(verdict, case["expect"])
    # The reference interpreter reaches the same outcome as the compiled chain.
    interpreted = Verdict(policy, intent, state, policy.interpret(intent, state))
    assert interpreted.outcome[:7] == verdict.outcome[:7]
    assert interpreted.decision_code == verdict.decision_code
    # The full decision builds, serialises, and evaluation left the snapshot alone.
    decision = json.loads(verdict.decision().model_dump_json())
    assert decision["decision_code"] == case["expect"]["decision_code"]
    assert decision["rule_id"] == case["expect"]["rule_id"]
    assert decision["approved"] is case["expect"]["approved"]
    assert _close(decision["approved_risk_abs"], case["expect"]["approved_risk_abs"])
    assert _close(decision["requested_risk_abs"], intent.requested_risk_abs)
    assert decision["policy"]["hash"] == policy.content_hash
    assert verdict.log_line()
    assert state.model_dump_json() == before
