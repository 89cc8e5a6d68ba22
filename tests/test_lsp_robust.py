"""`policy lsp`'s analysis never raises on a half-typed buffer (issue 21).

An editor sends every intermediate state of the text: a key cut in half, a quote not yet
closed, a line deleted. The property: whatever a bundled policy becomes after cutting a
piece out of it or pasting a piece into it, every feature answers (maybe with nothing)
instead of raising, at every position of the edited line.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.lsp import actions, features
from policy_engine.lsp.index import Analysis

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [(p.name, p.read_text("utf-8")) for p in sorted((ROOT / "policies").glob("*.yaml"))]
PIECES = ["params.", "intent.", '"', "{", ": ", "- id: x\n", "  when: ", "min(", "\n  ", "#", "€"]


@st.composite
def edited(draw: st.DrawFn) -> tuple[str, str, int]:
    name, text = draw(st.sampled_from(TEXTS))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 40)))
    piece = draw(st.sampled_from(["", *PIECES]))
    return name, text[:start] + piece + text[end:], start


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_every_feature_answers_on_a_half_typed_buffer(case: tuple[str, str, int]) -> None:
    name, text, at = case
    a = Analysis(f"policies/edited-{name}", text)  # a `*_test.yaml` stays a test file
    line = text.count("\n", 0, at)
    width = len(a.lines.line(line))
    assert isinstance(actions.to_lsp(a, list(a.result.diagnostics), None), list)
    for col in range(0, width + 1, max(1, width // 8)):
        features.completion(a, line, col)
        features.hover(a, line, col)
        a.at(line, col)
    features.document_symbols(a)
    actions.code_actions(a, "file:///edited.yaml", [])
    assert a.occurrences == tuple(sorted(a.occurrences))
