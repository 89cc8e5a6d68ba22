"""Golden diagnostics: every broken policy in ``tests/golden/load`` fails to load with
exactly the diagnostics in its ``.expected`` file (sorted ``path:line:col: CODE message``).

Run with ``UPDATE_GOLDEN=1`` to rewrite the ``.expected`` files after a deliberate change;
then review the diff: every line and column must point at the offending text.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policy_engine import Policy, PolicyError
from policy_engine.document.yaml_source import load_document

GOLDEN = Path(__file__).resolve().parent / "golden" / "load"
CASES = sorted(GOLDEN.glob("*.yaml"))


def _diagnostics(path: Path) -> list[str]:
    try:
        Policy.from_document(load_document(path, display=path.name))
    except PolicyError as exc:
        return [d.format() for d in exc.diagnostics]
    raise AssertionError(f"{path.name} loaded, but every golden policy is broken")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_load_diagnostics(path: Path) -> None:
    """Loading the broken policy reports exactly the expected diagnostics, positions included."""
    lines = _diagnostics(path)
    expected_file = path.with_suffix(".expected")
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text("\n".join(lines) + "\n", "utf-8")
    assert expected_file.exists(), f"no {expected_file.name}; run with UPDATE_GOLDEN=1"
    assert lines == expected_file.read_text("utf-8").splitlines()
    assert lines == sorted(lines, key=_sort_key)
    # Every position exists in the file; expression diagnostics point at visible text or
    # just past it (an unexpected end), never into indentation or past the line.
    source = path.read_text("utf-8").splitlines()
    for line in lines:
        _name, row, col, rest = line.split(":", 3)
        text = source[int(row) - 1]
        assert 1 <= int(col) <= len(text) + 1, line
        if rest.split()[0].startswith(("PT2", "PT3")):
            assert int(col) > len(text) - len(text.lstrip()), line


def _sort_key(line: str) -> tuple[str, int, int, str]:
    path, row, col, rest = line.split(":", 3)
    return (path, int(row), int(col), rest)


def test_every_golden_has_expected_file() -> None:
    """No stray .expected file without its policy, and no policy without its .expected file."""
    policies = {p.stem for p in GOLDEN.glob("*.yaml")}
    expected = {p.stem for p in GOLDEN.glob("*.expected")}
    assert policies == expected
    assert len(policies) >= 20


def test_schema_and_expression_errors_are_reported_in_one_pass() -> None:
    """A schema error elsewhere no longer hides the expression errors of the rules that
    validated (a user fixed one error and then met four); a rule that reads a definition
    which failed the schema is left alone rather than blamed for it."""
    lines = _diagnostics(GOLDEN / "schema_and_expressions.yaml")
    codes = [line.split(": ", 1)[1].split()[0] for line in lines]
    assert codes == ["PT111", "PT111", "PT201", "PT305", "PT301"]
    assert "unknown name `params.cpa` (did you mean `params.cap`?)" in lines[-1]
    # `strategy.max_trade` is misspelt too, but `strategies` failed the schema: not reported yet
    assert not any("max_trade" in line for line in lines)
