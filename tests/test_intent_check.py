"""An intent that arrives already built (issue 18): ``model_construct`` and
``model_copy(update=...)`` skip pydantic's checks, so an instance is never trusted for its
type. ``engine.intents.is_valid_instance`` checks its fields directly instead of validating it
again: it must never pass what validation would refuse or change (soundness), and must pass
every instance validation built (or the fast path is never taken)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policy_engine import PortfolioController, PortfolioIntent, load_policy_text
from policy_engine.engine.intents import is_valid_instance

from support.events import intent as make_intent

POLICY = """\
api_version: policy-engine/v1
name: inputs-check
version: 1
inputs:
  edge: {type: number, default: null}
  venue: {type: string, default: "X"}
  live: {type: bool, required: true}
  since: {type: time, default: null}
rules:
  - {id: r, category: SIZE, require: intent.risk <= 1000}
"""
MODEL = load_policy_text(POLICY, "inputs-check.yaml").intent_model
TS = datetime(2026, 1, 5, 9, tzinfo=UTC)


def mostly(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    """A valid value nine times in ten, so that whole intents are often valid."""
    good, bad = st.sampled_from(valid), st.sampled_from(invalid)
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else good)


AMOUNTS = mostly(
    [0.0, 1.5, 100, 100.0, 1e15],
    [1e-7, 0.1234567, -1.0, 1e300, math.nan, math.inf, True, "5", None],
)
NAMES = mostly(["a", "x" * 200], ["", "x" * 201, 5, None, b"a"])
TEXTS = mostly([None, "t", "x" * 1000], ["x" * 1001, 1])
TIMES = mostly(
    [TS, TS.astimezone(timezone(timedelta(hours=5))), "2026-01-05T09:00:00Z"],
    [
        TS.replace(tzinfo=None),
        datetime(1999, 12, 31, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        0,
        None,
    ],
)
REQUIRED = {
    "intent_id": NAMES,
    "strategy": NAMES,
    "symbol": NAMES,
    "side": mostly(["long", "short", "flat"], ["sideways", None]),
    "requested_risk_abs": AMOUNTS,
    "timestamp": TIMES,
    "live": mostly([True, False], [1, None]),
}
OPTIONAL = {
    "requested_notional_abs": mostly([None, 0.0, 2.5, 7], [math.nan, -1.0, 1e300]),
    "template_id": TEXTS,
    "playbook_id": TEXTS,
    "regime_state": TEXTS,
    "correlation_bucket": mostly([None, "a"], ["", 3]),
    "reduce_only": mostly([False, True], [0, None]),
    "edge": mostly([None, -5.0, 1.5, 3], [math.nan, 1e300, "5", True]),
    "venue": TEXTS,
    "since": TIMES,
}


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries(REQUIRED, optional=OPTIONAL))
def test_the_fast_check_passes_only_what_validation_keeps_as_it_is(fields: dict[str, Any]) -> None:
    built = MODEL.model_construct(**fields)
    if is_valid_instance(MODEL, built):
        validated = MODEL.model_validate(dict(vars(built)))
        assert vars(validated) == vars(built)
    try:
        validated = MODEL.model_validate(fields)
    except ValidationError:
        return
    assert is_valid_instance(MODEL, validated)  # what validation builds takes the fast path


def test_an_extra_or_missing_field_is_not_passed() -> None:
    good = MODEL.model_validate(make_intent("a", TS, live=True))
    assert is_valid_instance(MODEL, good)
    missing = dict(vars(good))
    del missing["live"]
    assert not is_valid_instance(MODEL, MODEL.model_construct(**missing))
    assert not is_valid_instance(PortfolioIntent, good)  # the inputs are not base fields


def test_a_bad_input_built_without_validation_is_refused_before_the_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    with PortfolioController(load_policy_text(POLICY, "p.yaml"), equity=1e6, journal=path) as ctl:
        good = ctl.policy.intent_model.model_validate(make_intent("a", TS, live=True))
        before = path.read_bytes()
        for bad in (math.nan, 1e300, "5"):
            decision = ctl.request_allocation(good.model_copy(update={"edge": bad}))
            assert decision.decision_code == "rejected_invalid_intent"
        assert path.read_bytes() == before
        assert ctl.request_allocation(good).approved  # the instance itself, unchanged
