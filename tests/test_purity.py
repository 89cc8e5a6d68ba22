"""Evaluation is pure and deterministic: same inputs, same decision; the snapshot is untouched."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from casefiles import CASE_FILES, case_inputs, case_policy

from policy_engine import Policy, PortfolioIntent, PortfolioSnapshot


def _load(data: dict[str, Any], path: Path) -> Policy:
    return case_policy(path)


def _all_cases() -> list[Any]:
    out = []
    for path in CASE_FILES:
        data = yaml.safe_load(path.read_text("utf-8"))
        model = case_policy(path).intent_model
        inputs = [case_inputs(data, c, model) for c in data.get("cases") or [] if not c.get("with")]
        out.append(pytest.param(data, path, inputs, id=path.stem))
    return out


@pytest.mark.parametrize(("data", "name", "inputs"), _all_cases())
def test_same_inputs_same_decision(
    data: dict[str, Any], name: Path, inputs: list[tuple[PortfolioIntent, PortfolioSnapshot]]
) -> None:
    """Every case decides identically twice, after other evaluations, and on a fresh load."""
    policy = _load(data, name)
    first = [policy.evaluate(i, s).decision().model_dump_json() for i, s in inputs]
    # Again, in reverse order: no state carries over from one evaluation to the next.
    again = [policy.evaluate(i, s).decision().model_dump_json() for i, s in reversed(inputs)]
    assert again[::-1] == first
    # A second load of the same policy text decides identically (same content hash too).
    fresh = _load(data, name)
    assert fresh.content_hash == policy.content_hash
    assert [fresh.evaluate(i, s).decision().model_dump_json() for i, s in inputs] == first


@pytest.mark.parametrize(("data", "name", "inputs"), _all_cases())
def test_snapshot_and_intent_not_mutated(
    data: dict[str, Any], name: Path, inputs: list[tuple[PortfolioIntent, PortfolioSnapshot]]
) -> None:
    """Evaluating and explaining a decision leaves the snapshot and the intent exactly as they were."""
    policy = _load(data, name)
    for intent, snap in inputs:
        snap_before = copy.deepcopy(snap.model_dump())
        buckets = {k: dict(getattr(snap, k)) for k in ("strategies", "symbols", "cohorts")}
        intent_before = intent.model_dump()
        verdict = policy.evaluate(intent, snap)
        verdict.decision()
        verdict.log_line()
        policy.explain(intent, snap)
        assert snap.model_dump() == snap_before
        assert {k: dict(getattr(snap, k)) for k in buckets} == buckets
        assert intent.model_dump() == intent_before


@pytest.mark.parametrize(("data", "name", "inputs"), _all_cases())
def test_explanation_does_not_depend_on_access_order(
    data: dict[str, Any], name: Path, inputs: list[tuple[PortfolioIntent, PortfolioSnapshot]]
) -> None:
    """Reading context, reasons and warnings first (lazily computed) does not change the decision."""
    policy = _load(data, name)
    for intent, snap in inputs:
        plain = policy.evaluate(intent, snap).decision().model_dump_json()
        verdict = policy.evaluate(intent, snap)
        _ = (
            verdict.warnings,
            verdict.reasons,
            verdict.context,
            verdict.headroom,
            verdict.log_line(),
        )
        assert verdict.decision().model_dump_json() == plain
