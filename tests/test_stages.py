"""The compile stages: named, in order, each run only when the one before it succeeded."""

from __future__ import annotations

from policy_engine.document.stages import STAGES, check_document
from policy_engine.document.yaml_source import parse_document

GOOD = """\
api_version: policy-engine/v1
name: stages
version: 1
params: {cap: 100}
rules:
  - id: cap
    limit: params.cap
"""


def _codes(text: str) -> list[str]:
    checked, problems = check_document(parse_document(text.encode(), "p.yaml"))
    assert checked is None
    return [p.code for p in problems]


def test_the_stages_and_their_order() -> None:
    assert [s.name for s in STAGES] == ["budget", "schema", "api_version", "build", "check", "cost"]


def test_a_good_policy_passes_every_stage() -> None:
    checked, problems = check_document(parse_document(GOOD.encode(), "p.yaml"))
    assert checked is not None and problems == []
    assert [r.spec.id for r in checked.rules] == ["cap"]


def test_a_failing_stage_stops_the_ones_after_it() -> None:
    """Another API version is refused before the model is built: its NaN constant (PT308,
    the build's) and its unknown name (PT301, the checker's) are not reported; with the
    right version the build reports the constant and stops before the checker."""
    broken = GOOD.replace("{cap: 100}", "{cap: .nan}") + "  - id: x\n    require: nope.x\n"
    assert _codes(broken.replace("v1", "v9")) == ["PT112"]
    assert _codes(broken) == ["PT308"]
    assert _codes(GOOD + "  - id: x\n    require: nope.x\n") == ["PT301"]


def test_the_budget_comes_before_the_schema() -> None:
    """An oversized list is reported alone, though the schema would refuse it too."""
    huge = "[" + ", ".join(["1"] * 20_000) + "]"
    assert set(_codes(GOOD + f"unknown_key: {huge}\n")) == {"PT116"}
