"""The pre-commit hooks lint policy files only (issue 12): before, a hook with no `files:`
linted every YAML file of a repository, its CI workflows included, and failed the commit.

pre-commit itself is not needed: the test applies each hook's `files`/`exclude` patterns to
a repository's files, as pre-commit does, and runs its entry on what they select.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
WORKFLOW = """\
name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: policy test --coverage --min-coverage 100 policies/
"""


def _repository(tmp_path: Path) -> list[str]:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    (tmp_path / "policies").mkdir()
    for name in ("portfolio.yaml", "portfolio_test.yaml", "strategy_limits.yaml"):
        (tmp_path / "policies" / name).write_bytes((ROOT / "policies" / name).read_bytes())
    (tmp_path / "docker-compose.yml").write_text("services: {db: {image: postgres}}\n")
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())


def _selected(hook: dict[str, object], files: list[str]) -> list[str]:
    include = re.compile(str(hook.get("files", "")))
    exclude = re.compile(str(hook["exclude"])) if hook.get("exclude") else None
    return [f for f in files if include.search(f) and not (exclude and exclude.search(f))]


@pytest.mark.parametrize("hook", HOOKS, ids=[h["id"] for h in HOOKS])
def test_a_hook_passes_a_repository_with_a_ci_workflow_next_to_its_policies(
    hook: dict[str, object], tmp_path: Path
) -> None:
    files = _repository(tmp_path)
    selected = _selected(hook, files)
    assert "policies/portfolio_test.yaml" not in selected  # decision tests are not policies
    command = shlex.split(str(hook["entry"]))
    program = {
        "policy-check": ["-m", "policy_engine.cli.__main__", "check"],
        "policy": ["-m", "policy_engine.cli"],
    }
    argv = [sys.executable, *program[command[0]], *command[1:], *selected]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if command[0] == "policy-check":
        assert "checked 2 files" in proc.stdout  # the two policies, not the workflow
    assert (tmp_path / ".github/workflows/ci.yml").read_text() == WORKFLOW


def test_without_the_filter_the_workflow_was_linted(tmp_path: Path) -> None:
    """What the hook did before: given the workflow, policy-check fails on it."""
    _repository(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "policy_engine.cli", "check", ".github/workflows/ci.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "PT111" in proc.stdout
