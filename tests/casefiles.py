"""The decision test files the repository ships, read the way `policy test` reads them.

`policies/*_test.yaml` test the bundled policies; `tests/cases/*_test.yaml` test the
language itself (each with an inline `policy_text`). Shared by the case runner and the
purity tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy_engine import Policy, PortfolioIntent, PortfolioSnapshot
from policy_engine.testing.runner import load_tested_policy, with_constants
from policy_engine.testing.suite import Suite, merge

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = Path(__file__).resolve().parent / "cases"
CASE_FILES = sorted([*CASES_DIR.glob("*_test.yaml"), *(ROOT / "policies").glob("*_test.yaml")])

__all__ = ["CASES_DIR", "CASE_FILES", "ROOT", "case_inputs", "case_policy", "merge"]


def case_policy(path: Path, case: dict[str, Any] | None = None) -> Policy:
    """The policy a test file tests (with the case's `with` constants, if any)."""
    policy = load_tested_policy(Suite.load(str(path)))
    with_ = (case or {}).get("with") or {}
    return with_constants(policy, with_) if with_ else policy


def case_inputs(
    data: dict[str, Any], case: dict[str, Any], model: type[PortfolioIntent] = PortfolioIntent
) -> tuple[PortfolioIntent, PortfolioSnapshot]:
    """A case's intent (of ``model``: the policy's intent model) and state, on top of the
    file's `defaults`."""
    defaults = data.get("defaults") or {}
    intent = model.model_validate(merge(defaults.get("intent") or {}, case["intent"]))
    state = PortfolioSnapshot.model_validate(merge(defaults.get("state") or {}, case["state"]))
    return intent, state
