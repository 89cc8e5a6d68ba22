"""Every backend handles every name source (``document.names.Source``), and the type checker
says so: adding a source without handling it everywhere fails ``mypy --strict``.

The backends switch with ``match ref.source`` ending in ``assert_never``; these tests prove
each switch names every member (so the ``assert_never`` branch is unreachable), that each
runs for every member, and that mypy does reject a switch that forgets one.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api

from policy_engine.analysis.declaration_lints import declaration_read
from policy_engine.analysis.linter import domain
from policy_engine.document.names import Ref, Source
from policy_engine.engine.caps import bucket_read
from policy_engine.engine.codegen import Emitter
from policy_engine.engine.interpreter import read_ref
from policy_engine.lang import valuetypes as t

ROOT = Path(__file__).resolve().parent.parent

BACKENDS: dict[str, Callable[..., Any]] = {
    "codegen": Emitter.name,
    "interpreter": read_ref,
    "caps": bucket_read,
    "linter domains": domain,
    "declarations read": declaration_read,
}


def _cases(function: Callable[..., Any]) -> tuple[set[str], bool]:
    """The Source members the function's ``match ....source`` names, and whether its last
    case is ``assert_never``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    matches = [
        m
        for m in ast.walk(tree)
        if isinstance(m, ast.Match)
        and isinstance(m.subject, ast.Attribute)
        and m.subject.attr == "source"
    ]
    assert len(matches) == 1, function
    named = {
        n.attr
        for case in matches[0].cases
        for n in ast.walk(case.pattern)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "Source"
    }
    last = matches[0].cases[-1].body[-1]
    exhaustive = (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and isinstance(last.value.func, ast.Name)
        and last.value.func.id == "assert_never"
    )
    return named, exhaustive


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_each_backend_names_every_source(backend: str) -> None:
    named, exhaustive = _cases(BACKENDS[backend])
    assert named == {m.name for m in Source}, backend
    assert exhaustive, f"{backend}: the last case must be assert_never"


@pytest.mark.parametrize("source", list(Source), ids=lambda s: s.name)
def test_the_pure_tables_answer_for_every_source(source: Source) -> None:
    ref = Ref(source, "heat", t.NUMBER, (), "venue")
    domain(ref)
    bucket_read(ref)
    declaration_read(ref)


def test_mypy_rejects_a_switch_that_forgets_a_source(tmp_path: Path) -> None:
    """The proof that the backends' ``assert_never`` is a check and not a comment."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import assert_never\n"
        "from policy_engine.document.names import Source\n\n\n"
        "def f(source: Source) -> int:\n"
        "    match source:\n"
        "        case Source.INTENT:\n"
        "            return 1\n"
        "        case unknown:\n"
        "            assert_never(unknown)\n"
    )
    out, _err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", str(probe)]
    )
    assert status == 1, out
    assert 'Argument 1 to "assert_never" has incompatible type' in out
    assert "Source.INTENT_RISK" in out  # mypy names what is missing
