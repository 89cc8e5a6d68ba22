"""The cookbook's recipes run in CI (issues 12 and 11): each policy is clean under `--strict`, its
tests pass and fire every rule, it is formatted, and docs/cookbook.md shows exactly the
files (a recipe on the page is the recipe that is tested)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import check_command, cli

ROOT = Path(__file__).resolve().parent.parent
COOKBOOK = ROOT / "docs" / "cookbook"
POLICIES = sorted(p for p in COOKBOOK.glob("*.yaml") if not p.name.endswith("_test.yaml"))


def test_every_recipe_with_its_tests() -> None:
    assert len(POLICIES) == 37
    for policy in POLICIES:
        assert policy.with_name(policy.stem + "_test.yaml").is_file(), policy.name


def test_every_recipe_is_clean_tested_to_full_coverage_and_formatted() -> None:
    runner = CliRunner()
    checked = runner.invoke(check_command, [str(COOKBOOK), "--strict"])
    assert checked.exit_code == 0, checked.stdout
    tested = runner.invoke(cli, ["test", "--min-coverage", "100", str(COOKBOOK)])
    assert tested.exit_code == 0, tested.stdout
    assert tested.stdout.count("fired (100%)") == len(POLICIES)
    formatted = runner.invoke(cli, ["fmt", "--check", str(COOKBOOK)])
    assert formatted.exit_code == 0, formatted.stdout


def test_the_page_shows_the_files_verbatim() -> None:
    page = (ROOT / "docs" / "cookbook.md").read_text("utf-8")
    for path in sorted(COOKBOOK.glob("*.yaml")):
        block = f"`docs/cookbook/{path.name}`:\n\n```yaml\n{path.read_text('utf-8')}```"
        assert block in page, path.name
