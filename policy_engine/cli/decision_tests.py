"""``policy test [PATH...]``: run the decision tests next to the policies, with coverage.

Test files are ``<policy>_test.yaml`` beside ``<policy>.yaml`` (docs/testing.md);
a directory means every such file below it. Output like pytest's: a line of
dots per file, the failures with expected against actual and the deciding
rule's numbers, ``N passed, N failed`` last. ``--coverage`` reports, per policy,
what every rule did and which branches went only one way; ``--min-coverage``
fails a policy whose rule coverage is below it. Exit 0 all passed, 1 failures
(or coverage below the gate), 2 usage or internal error.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from .common import UsageError, plural

FORMATS = ("text", "json", "github")


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for CI annotations.",
)
@click.option("--coverage", is_flag=True, help="Report what every rule and branch did.")
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="PERCENT",
    help="Fail when a policy's rule coverage is below PERCENT (implies --coverage).",
)
def decision_tests_command(
    paths: tuple[str, ...], output_format: str, coverage: bool, min_coverage: float | None
) -> None:
    """Run the decision tests (`*_test.yaml`) of policies; PATH defaults to `.`."""
    from ..testing.runner import run_file
    from ..testing.suite import find_test_files

    started = time.perf_counter()
    try:
        files = find_test_files(list(paths) or ["."])
    except FileNotFoundError as exc:
        raise UsageError(f"`{exc.args[0]}` does not exist") from None
    if not files:
        raise UsageError(f"no `*_test.yaml` files under {', '.join(paths) or '.'}")
    wanted = coverage or min_coverage is not None
    reports = [run_file(f, coverage=wanted) for f in files]
    seconds = time.perf_counter() - started
    covered = _by_policy(reports)
    below = [c for c in covered if min_coverage is not None and c.percent < min_coverage]
    printer = {"text": _text, "json": _json, "github": _github}[output_format]
    click.echo(printer(reports, covered, min_coverage, seconds))
    failed = sum(1 for r in reports for t in r.results if not t.passed)
    broken = sum(1 for r in reports if r.error is not None)
    sys.exit(1 if failed or broken or below else 0)


def _by_policy(reports: list[Any]) -> list[Any]:
    """One coverage per policy, whatever the number of its test files (a policy is known by
    its file and content hash)."""
    merged: dict[tuple[str, str], Any] = {}
    for r in reports:
        cov = r.coverage
        if cov is None:
            continue
        key = (cov.checked.spec.path, cov.checked.spec.content_hash)
        if key in merged:
            merged[key].absorb(cov)
        else:
            merged[key] = cov
    return list(merged.values())


def _totals(reports: list[Any], seconds: float) -> str:
    passed = sum(1 for r in reports for t in r.results if t.passed)
    failed = sum(1 for r in reports for t in r.results if not t.passed)
    broken = sum(1 for r in reports if r.error is not None)
    extra = f", {plural(broken, 'file')} not run" if broken else ""
    return f"{passed} passed, {failed} failed{extra} in {seconds:.2f}s"


def _coverage_lines(cov: Any, min_coverage: float | None) -> list[str]:
    info = cov.as_dict()
    gate = ""
    if min_coverage is not None and cov.percent < min_coverage:
        gate = f"  BELOW --min-coverage {min_coverage:g}"
    out = [
        f"coverage of {info['policy']} ({info['name']} v{info['version']}): "
        f"{info['rules_fired']} of {plural(info['rules'], 'rule')} fired ({info['percent']:g}%), "
        f"{info['branches_both_ways']} of {info['branches']} branches both ways{gate}"
    ]
    width = max((len(r["rule_id"]) for r in info["by_rule"]), default=0)
    for row in info["by_rule"]:
        counts = ", ".join(f"{k} {v}" for k, v in row["outcomes"].items())
        mark = " " if row["status"] == "fired" else "!"
        out.append(f" {mark} {row['rule_id']:<{width}}  {row['status']:<12} {counts}".rstrip())
    for b in info["branches_one_way"]:
        seen = "/".join(str(v).lower() for v in b["seen"]) or "never evaluated"
        out.append(f"   branch in {b['rule_id']} ({b['part']}): `{b['branch']}` only {seen}")
    return out


def _text(
    reports: list[Any], covered: list[Any], min_coverage: float | None, seconds: float
) -> str:
    lines = []
    for r in reports:
        marks = "".join("." if t.passed else "F" for t in r.results)
        lines.append(f"{r.path} {marks}" if r.error is None else f"{r.path} E")
    failures = []
    for r in reports:
        if r.error is not None:
            failures.append(f"ERROR {r.path}\n  {r.error}")
        for t in r.results:
            if not t.passed:
                body = [f"  {f}" for f in t.failures] + [f"  {e}" for e in t.explanation]
                failures.append("\n".join([f"FAILED {t.file}:{t.line} {t.kind} {t.id}", *body]))
    blocks = ["\n".join(lines), *failures]
    blocks += ["\n".join(_coverage_lines(c, min_coverage)) for c in covered]
    return "\n\n".join([*blocks, _totals(reports, seconds)])


def _json(
    reports: list[Any], covered: list[Any], min_coverage: float | None, seconds: float
) -> str:
    out: dict[str, Any] = {
        "files": [
            {
                "path": r.path,
                "error": r.error,
                "tests": [
                    {
                        "id": t.id,
                        "kind": t.kind,
                        "line": t.line,
                        "passed": t.passed,
                        "failures": t.failures,
                        "explanation": t.explanation,
                    }
                    for t in r.results
                ],
            }
            for r in reports
        ],
        "coverage": [c.as_dict() for c in covered],
        "summary": {
            "passed": sum(1 for r in reports for t in r.results if t.passed),
            "failed": sum(1 for r in reports for t in r.results if not t.passed),
            "errors": sum(1 for r in reports if r.error is not None),
            "min_coverage": min_coverage,
            "seconds": round(seconds, 3),
        },
    }
    return json.dumps(out, indent=2, ensure_ascii=False)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github(
    reports: list[Any], covered: list[Any], min_coverage: float | None, seconds: float
) -> str:
    lines = []
    for r in reports:
        if r.error is not None:
            lines.append(f"::error file={r.path},title=policy test::{_escape(r.error)}")
        for t in r.results:
            if not t.passed:
                text = "\n".join([*t.failures, *t.explanation])
                lines.append(
                    f"::error file={t.file},line={t.line},title={t.kind} {t.id}::{_escape(text)}"
                )
    for c in covered:
        text = "\n".join(_coverage_lines(c, min_coverage))
        kind = "error" if min_coverage is not None and c.percent < min_coverage else "notice"
        lines.append(f"::{kind} title=policy coverage::{_escape(text)}")
    lines.append(_totals(reports, seconds))
    return "\n".join(lines)
