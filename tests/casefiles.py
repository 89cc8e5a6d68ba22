"""Reading the decision case files in tests/cases/ (shared by the case runner and the purity tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy_engine import Policy, PortfolioIntent, PortfolioSnapshot, load_policy, load_policy_text

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = Path(__file__).resolve().parent / "cases"


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def case_policy(data: dict[str, Any], name: str) -> Policy:
    """The policy a case file names (`policy: path`) or holds inline (`policy_text`)."""
    if "policy" in data:
        return load_policy(ROOT / data["policy"])
    return load_policy_text(data["policy_text"], f"cases/{name}")


def case_inputs(
    data: dict[str, Any], case: dict[str, Any]
) -> tuple[PortfolioIntent, PortfolioSnapshot]:
    """A case's intent and state, on top of the file's `defaults`."""
    defaults = data.get("defaults") or {}
    intent = PortfolioIntent.model_validate(merge(defaults.get("intent") or {}, case["intent"]))
    state = PortfolioSnapshot.model_validate(merge(defaults.get("state") or {}, case["state"]))
    return intent, state
