"""The architecture is enforced, not described: layers, a pure core, small documented modules.

The layer contract itself lives in ``pyproject.toml`` (``[tool.importlinter]``)
and ``.ci/run`` runs ``lint-imports``; these tests prove the contract holds,
that it fails on a deliberate violation, and what import-linter cannot see:
the control core's modules touch no file, clock, thread, logger or random
source.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "policy_engine"
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def _pure_core() -> list[str]:
    """The pure core's modules, from the one list: the import contract in pyproject.toml
    that forbids them the shells."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (core,) = [c for c in contracts if c["name"] == "the control core never imports its shells"]
    return [
        m.removeprefix("policy_engine.").replace(".", "/") + ".py" for m in core["source_modules"]
    ]


PURE_CORE = _pure_core()
FORBIDDEN_MODULES = {
    "asyncio",
    "io",
    "logging",
    "os",
    "pathlib",
    "random",
    "secrets",
    "shutil",
    "socket",
    "subprocess",
    "tempfile",
    "threading",
    "time",
    "urllib",
    "uuid",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval"}
CLOCK_METHODS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def _lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not Path(LINT_IMPORTS).exists():
        pytest.fail("lint-imports is not installed (the `test` extra brings it)")
    return subprocess.run(
        [LINT_IMPORTS], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_layer_contract_holds() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_the_layer_contract_fails_on_a_deliberate_violation(tmp_path: Path) -> None:
    """A lower layer importing a higher one (lang -> engine) breaks the build."""
    shutil.copytree(
        PACKAGE, tmp_path / "policy_engine", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    syntax = tmp_path / "policy_engine" / "lang" / "syntax.py"
    syntax.write_text(syntax.read_text() + "\nfrom ..engine import policy as _upward  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _lint_imports(tmp_path, env)
    assert result.returncode != 0
    assert "policy_engine.lang is not allowed to import policy_engine.engine" in result.stdout


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_control_core_does_no_io_reads_no_clock_and_never_logs(module: str) -> None:
    path = PACKAGE / module
    tree = ast.parse(path.read_text(), str(path))
    problems = [
        f"{module}:{line}: imports {name}"
        for line, name in _imports(tree)
        if name.split(".")[0] in FORBIDDEN_MODULES
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                problems.append(f"{module}:{node.lineno}: calls {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr in CLOCK_METHODS:
                problems.append(f"{module}:{node.lineno}: reads a clock (.{func.attr}())")
    assert not problems, "\n".join(problems)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_is_small_and_says_what_it_is_for() -> None:
    problems = []
    for path in _modules():
        rel = path.relative_to(ROOT)
        text = path.read_text()
        if len(text.splitlines()) > 500:
            problems.append(f"{rel}: {len(text.splitlines())} lines (keep modules under 500)")
        if ast.get_docstring(ast.parse(text)) is None:
            problems.append(f"{rel}: no module docstring")
    assert not problems, "\n".join(problems)


def test_no_module_is_named_after_a_standard_library_module() -> None:
    clashes = [
        str(p.relative_to(ROOT))
        for p in _modules()
        if p.stem in sys.stdlib_module_names and p.stem not in ("__init__", "__main__")
    ]
    assert not clashes


def test_every_control_module_is_core_or_shell() -> None:
    """A new control module must be placed in the import contract: in the pure core
    (checked for I/O, clocks and logging above) or among the shells the core may not
    import (a listed module that does not exist fails ``lint-imports`` itself)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (core,) = [c for c in contracts if c["name"] == "the control core never imports its shells"]
    listed = {*core["source_modules"], *core["forbidden_modules"]}
    present = {
        f"policy_engine.control.{p.stem}"
        for p in (PACKAGE / "control").glob("*.py")
        if p.name != "__init__.py"
    }
    assert sorted(present - listed) == []
