"""``policy-check`` (and ``policy check``): lint policy files the way a compiler would.

Prints every finding, sorted, in the rustc manner (the source line, a caret,
``help:``; ``--format concise`` for one ``path:line:col: CODE message`` line
each); exit 0 clean, 1 findings, 2 usage or internal error. Many files are
spread over the machine's cores.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .. import diagnostics as d
from ..analysis.check import Result, check_bytes, check_file
from ..analysis.diff import semantic_diff, version_check
from ..diagnostics import Diagnostic, Severity, Span
from ..document.yaml_source import MAX_FILE_BYTES, read_policy_bytes, says_policy
from .common import UsageError, plural, progress
from .render import file_sources, render_all

FORMATS = ("text", "concise", "json", "github")
POLICY_SUFFIXES = (".yaml", ".yml")


TEST_FILE_SUFFIX = "_test.yaml"  # a policy's decision tests (`policy test`), not a policy


def policy_files(paths: Sequence[str]) -> list[str]:
    """Files as given, directories expanded to every `*.yaml` / `*.yml` below them (sorted),
    decision test files (`*_test.yaml`) left out."""
    out: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.suffix in POLICY_SUFFIXES
                and not p.name.endswith(TEST_FILE_SUFFIX)
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise UsageError(f"no `*.yaml` or `*.yml` files under `{raw}`")
            out.extend(found)
        elif path.exists():
            out.append(raw)
        else:
            raise UsageError(f"`{raw}` does not exist")
    return list(dict.fromkeys(out))


@dataclass
class Report:
    """Everything one `policy-check` run found."""

    results: list[Result]
    diagnostics: list[Diagnostic]
    seconds: float
    diff: list[str] | None = None
    against: str | None = None

    @property
    def errors(self) -> int:
        return sum(1 for x in self.diagnostics if x.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for x in self.diagnostics if x.severity is Severity.WARNING)

    @property
    def rules(self) -> int:
        return sum(r.rules for r in self.results)

    def exit_code(self, strict: bool) -> int:
        if any(x.code == d.PT499 for x in self.diagnostics):
            return 2
        if self.errors or (strict and self.warnings):
            return 1
        return 0

    def summary(self) -> str:
        n = len(self.results)
        head = f"checked {n} file{'s' if n != 1 else ''}, {self.rules} rule{'s' if self.rules != 1 else ''} in {self.seconds:.2f}s"
        if not self.diagnostics:
            return f"{head}: no problems found"
        return f"{head}: {plural(self.errors, 'error')}, {plural(self.warnings, 'warning')}"


def _safe_check(path: str) -> Result:
    try:
        return check_file(path)
    except Exception as exc:  # never a traceback for a policy file, whatever it holds
        message = f"internal error: {type(exc).__name__}: {exc}"
        return Result(path, [d.diagnostic(d.PT499, message, Span(path))])


def _slim_check(path: str) -> Result:
    """A worker's result: the diagnostics and the rule count, nothing heavy to pickle."""
    result = _safe_check(path)
    return Result(result.path, result.diagnostics, rule_count=result.rules)


PARALLEL_FROM = 16  # files; below this a worker pool costs more than it saves


def _check_all(targets: list[str]) -> list[Result]:
    """Check files in order; many files are spread over the machine's cores."""
    workers = min(os.cpu_count() or 1, 8)
    if len(targets) < PARALLEL_FROM or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [_safe_check(p) for p in progress(targets, desc="checking", total=len(targets))]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        done = pool.map(_slim_check, targets, chunksize=max(1, len(targets) // (workers * 4)))
        return list(progress(done, desc="checking", total=len(targets)))


def read_old(against: str, path: str) -> tuple[bytes, str]:
    """The old version: a file, or `REV` (a git revision of ``path``).

    The value never reaches git as an option: one starting with `-` is refused, and the
    revision is passed after `--end-of-options` (`git show -- REV` would read a path)."""
    if Path(against).is_file():
        return read_policy_bytes(against), against
    if against.startswith("-"):
        raise UsageError(f"`--against {against}`: a revision or file cannot start with `-`")
    where = Path(path).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "-C", str(where), "show", "--end-of-options", f"{against}:./{Path(path).name}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run git to read `{against}`: {exc}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[0] if detail else "git show failed"
        raise UsageError(f"`{against}` is neither a file nor a git revision of `{path}` ({reason})")
    return proc.stdout, f"{against}:{path}"


def declares_policy(path: str) -> bool:
    """Whether the file says it is a policy (a top-level `api_version: policy-engine/...`):
    how `--only-policies` tells a policy from a CI workflow or any other YAML file."""
    try:
        with open(path, "rb") as fh:
            return says_policy(fh.read(MAX_FILE_BYTES + 1))
    except OSError:
        return True  # let the check report why it cannot be read


_SEAL_MARK = re.compile(rb"^integrity:", re.MULTILINE)


def seal_lints(targets: Sequence[str]) -> list[Diagnostic]:
    """PT436 on each unsealed policy file (no top-level `integrity`) in a folder where another
    file is sealed: the folder's convention is to seal, and this one can be cut silently."""
    sealed: dict[str, bool] = {}
    for path in targets:
        try:
            with open(path, "rb") as fh:
                sealed[path] = _SEAL_MARK.search(fh.read(MAX_FILE_BYTES + 1)) is not None
        except OSError:
            continue  # the check itself says why it cannot be read
    by_folder: dict[Path, int] = {}
    for path, mark in sealed.items():
        by_folder[Path(path).parent] = by_folder.get(Path(path).parent, 0) + mark
    out = []
    for path, mark in sealed.items():
        others = by_folder[Path(path).parent]
        if mark or not others or not declares_policy(path):
            continue
        message = (
            f"this policy file has no `integrity` block while {plural(others, 'other file')} "
            f"in its folder {'is' if others == 1 else 'are'} sealed: a truncated copy of it "
            f"would load"
        )
        help_ = f"run `policy integrity {path}` and paste the block at the top"
        out.append(d.diagnostic(d.PT436, message, Span(path), help_))
    return out


def run_check(
    paths: Sequence[str], against: str | None = None, only_policies: bool = False
) -> Report:
    """Check every policy file under ``paths``; with ``against``, compare with the old version;
    with ``only_policies``, files that do not declare a policy are left out."""
    started = time.perf_counter()
    targets = policy_files(paths)
    if only_policies:
        targets = [t for t in targets if declares_policy(t)]
    if against is not None and len(targets) != 1:
        raise UsageError("`--against` compares one policy file; give exactly one")
    results = _check_all(targets) if against is None else [_safe_check(targets[0])]
    diagnostics = [x for r in results for x in r.diagnostics] + seal_lints(targets)
    diff: list[str] | None = None
    shown: str | None = None
    if against is not None:
        raw, shown = read_old(against, targets[0])
        old = check_bytes(raw, shown)
        new = results[0]
        if old.checked is None:
            click.echo(
                f"note: the old version `{shown}` does not load; nothing to compare", err=True
            )
            shown = None
        elif new.checked is not None:
            diagnostics += version_check(old, new)
            diff = semantic_diff(old.checked, new.checked)
    return Report(
        results, d.sort_diagnostics(diagnostics), time.perf_counter() - started, diff, shown
    )


def format_text(report: Report) -> str:
    """For people: each finding with its source line, a caret under it and its help."""
    texts = {r.path: r.doc.text for r in report.results if r.doc is not None}
    read = file_sources()
    blocks = [render_all(report.diagnostics, lambda path: texts.get(path) or read(path))]
    return "\n\n".join([b for b in blocks if b] + [_tail(report)])


def format_concise(report: Report) -> str:
    """For editors and scripts: one `path:line:col: CODE message (help)` line per finding."""
    return "\n".join([x.format() for x in report.diagnostics] + [_tail(report)])


def _tail(report: Report) -> str:
    """The semantic diff (with `--against`) and the summary line."""
    lines = []
    if report.diff is not None:
        lines.append(
            f"changes since {report.against}:"
            if report.diff
            else f"no changes since {report.against}"
        )
        lines.extend(f"  {line}" for line in report.diff)
    lines.append(report.summary())
    return "\n".join(lines)


def diagnostic_json(x: Diagnostic) -> dict[str, Any]:
    return {
        "path": x.span.path,
        "line": x.span.line,
        "col": x.span.col,
        "code": x.code,
        "severity": str(x.severity),
        "message": x.text,
        "help": x.help,
    }


def format_json(report: Report) -> str:
    out: dict[str, Any] = {
        "diagnostics": [diagnostic_json(x) for x in report.diagnostics],
        "summary": {
            "files": len(report.results),
            "rules": report.rules,
            "errors": report.errors,
            "warnings": report.warnings,
            "seconds": round(report.seconds, 3),
        },
    }
    if report.diff is not None:
        out["against"] = report.against
        out["diff"] = report.diff
    return json.dumps(out, indent=2, ensure_ascii=False)


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(report: Report) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    lines = []
    for x in report.diagnostics:
        kind = "error" if x.severity is Severity.ERROR else "warning"
        props = f"file={_gh_escape(x.span.path, True)},line={x.span.line},col={x.span.col},title={x.code}"
        lines.append(f"::{kind} {props}::{_gh_escape(f'{x.code} {x.text}')}")
    if report.diff:
        lines.append(f"::notice title=policy diff::{_gh_escape(chr(10).join(report.diff))}")
    lines.append(report.summary())
    return "\n".join(lines)


FORMATTERS = {
    "text": format_text,
    "concise": format_concise,
    "json": format_json,
    "github": format_github,
}


def _check(
    paths: tuple[str, ...],
    output_format: str,
    strict: bool,
    against: str | None,
    only_policies: bool = False,
    verify: bool = False,
) -> None:
    if not paths:
        raise UsageError("give at least one policy file or directory")
    report = run_check(paths, against, only_policies)
    text = FORMATTERS[output_format](report)
    code = report.exit_code(strict)
    if verify and code == 0:
        # `policy verify` on every file that checked clean: its own exit codes (1 a property
        # violated, 3 inconclusive) when the lints found nothing
        from .verify import exit_code, format_text, run_verify

        clean = [r.path for r in report.results if r.rules]
        results = run_verify(clean, None, (), 30.0) if clean else []
        if output_format == "json":  # one JSON object still: the results under `verify`
            text = json.dumps(
                {**json.loads(text), "verify": [r.as_json() for r in results]}, indent=2
            )
        else:
            text += "\n" + format_text(results)
        code = exit_code(results)
    click.echo(text)
    sys.exit(code)


_check_options = [
    click.argument("paths", nargs=-1, type=click.Path()),
    click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help="text for people (source line, caret, help), concise for editors and "
        "scripts (one line each), json for tools, github for CI annotations.",
    ),
    click.option("--strict", is_flag=True, help="Warnings fail too (exit 1)."),
    click.option(
        "--only-policies",
        is_flag=True,
        help="Skip YAML files that do not declare `api_version: policy-engine/...` "
        "(for hooks that are given every YAML file of a repository).",
    ),
    click.option(
        "--verify",
        is_flag=True,
        help="Also prove each clean policy's properties with `policy verify` (exit 1 when one "
        "is violated, 3 when one is inconclusive).",
    ),
    click.option(
        "--against",
        metavar="OLD",
        help="Compare with an old version (a file, or a git revision of the same path): "
        "the version must go up, and a short semantic diff is printed.",
    ),
]


def _with_check_options(fn: Any) -> Any:
    for option in reversed(_check_options):
        fn = option(fn)
    return fn


CHECK_HELP = """Check policy files (and every *.yaml / *.yml under directories).

Prints every finding with its source line, a caret and a help line
(`--format concise`: one `path:line:col: CODE message` line each), sorted;
exit 0 clean, 1 findings, 2 usage or internal error. Codes are documented
in docs/codes.md.
"""


@click.command(
    "policy-check", help=CHECK_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@_with_check_options
def check_command(
    paths: tuple[str, ...],
    output_format: str,
    strict: bool,
    only_policies: bool,
    verify: bool,
    against: str | None,
) -> None:
    _check(paths, output_format, strict, against, only_policies, verify)
