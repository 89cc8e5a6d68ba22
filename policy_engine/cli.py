"""The command line: ``policy-check`` and ``policy`` (check, explain, schema, run, replay).

Exit codes everywhere: 0 clean, 1 findings (diagnostics, rejected or changed
decisions), 2 usage or internal error. Output meant for people goes to
stdout; progress bars go to stderr and only when stderr is a terminal.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from tqdm import tqdm

from . import diagnostics as d
from .analysis.check import Result, check_bytes, check_file
from .analysis.diff import semantic_diff, version_check
from .diagnostics import Diagnostic, Severity, Span

FORMATS = ("text", "json", "github")
POLICY_SUFFIXES = (".yaml", ".yml")
T = TypeVar("T")


class UsageError(click.UsageError):
    """Bad arguments: exit 2 with a one-line message."""


def progress(
    items: Sequence[T] | Iterable[T], *, desc: str, total: int | None = None
) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal; the bare iterable otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, leave=False, unit="", file=sys.stderr)


# --- policy-check ----------------------------------------------------------------------


def policy_files(paths: Sequence[str]) -> list[str]:
    """Files as given, directories expanded to every `*.yaml` / `*.yml` below them (sorted)."""
    out: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.suffix in POLICY_SUFFIXES
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
        return f"{head}: {_count(self.errors, 'error')}, {_count(self.warnings, 'warning')}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


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
    """The old version: a file, or `REV` (a git revision of ``path``)."""
    if Path(against).is_file():
        return Path(against).read_bytes(), against
    where = Path(path).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "-C", str(where), "show", f"{against}:./{Path(path).name}"],
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


def run_check(paths: Sequence[str], against: str | None = None) -> Report:
    """Check every policy file under ``paths``; with ``against``, compare with the old version."""
    started = time.perf_counter()
    targets = policy_files(paths)
    if against is not None and len(targets) != 1:
        raise UsageError("`--against` compares one policy file; give exactly one")
    results = _check_all(targets) if against is None else [_safe_check(targets[0])]
    diagnostics = [x for r in results for x in r.diagnostics]
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
    lines = [x.format() for x in report.diagnostics]
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
        "message": x.message,
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
        lines.append(f"::{kind} {props}::{_gh_escape(f'{x.code} {x.message}')}")
    if report.diff:
        lines.append(f"::notice title=policy diff::{_gh_escape(chr(10).join(report.diff))}")
    lines.append(report.summary())
    return "\n".join(lines)


FORMATTERS = {"text": format_text, "json": format_json, "github": format_github}


def _check(paths: tuple[str, ...], output_format: str, strict: bool, against: str | None) -> None:
    if not paths:
        raise UsageError("give at least one policy file or directory")
    report = run_check(paths, against)
    click.echo(FORMATTERS[output_format](report))
    sys.exit(report.exit_code(strict))


_check_options = [
    click.argument("paths", nargs=-1, type=click.Path()),
    click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help="text for people, json for tools, github for CI annotations.",
    ),
    click.option("--strict", is_flag=True, help="Warnings fail too (exit 1)."),
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

Prints `path:line:col: CODE message`, sorted; exit 0 clean, 1 findings,
2 usage or internal error. Codes are documented in docs/codes.md.
"""


@click.command(
    "policy-check", help=CHECK_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@_with_check_options
def check_command(
    paths: tuple[str, ...], output_format: str, strict: bool, against: str | None
) -> None:
    _check(paths, output_format, strict, against)


# --- policy ------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Risk limits as YAML policies: check, explain, run and replay them."""


@cli.command("check", help=CHECK_HELP)
@_with_check_options
def check_subcommand(
    paths: tuple[str, ...], output_format: str, strict: bool, against: str | None
) -> None:
    _check(paths, output_format, strict, against)


def read_data(path: str, what: str) -> Any:
    """A JSON or YAML file as plain data (a usage error if it cannot be read)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the {what} file `{path}`: {exc}") from None
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid data"
        raise UsageError(f"the {what} file `{path}` is not valid JSON or YAML: {first}") from None


def load_or_report(path: str) -> Any:
    """Load a policy for running; on any error print its diagnostics and exit 1."""
    from .diagnostics import PolicyError
    from .engine.policy import load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        for x in exc.diagnostics:
            click.echo(x.format(), err=True)
        sys.exit(1)


def _model(cls: Any, data: Any, path: str, what: str) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg'].lower()}"
            for e in exc.errors()
        )
        raise UsageError(
            f"the {what} file `{path}` is not a valid {cls.__name__}: {problems}"
        ) from None


@cli.command("explain", short_help="Show every rule's verdict and values for one intent.")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--intent",
    "intent_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A PortfolioIntent (JSON or YAML).",
)
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A PortfolioSnapshot (JSON or YAML).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the decision and every rule's trace as JSON."
)
def explain_command(policy_path: str, intent_path: str, state_path: str, as_json: bool) -> None:
    """Evaluate every rule (not only up to the first failure) and show why.

    Prints the decision, then each rule with its verdict and the value of
    every sub-expression. Exit 0 whatever the decision.
    """
    from .engine.contracts import PortfolioIntent, PortfolioSnapshot
    from .lang.lexical import fmt

    policy = load_or_report(policy_path)
    intent = _model(PortfolioIntent, read_data(intent_path, "intent"), intent_path, "intent")
    state = _model(PortfolioSnapshot, read_data(state_path, "state"), state_path, "state")
    verdict = policy.evaluate(intent, state)
    rows = policy.explain(intent, state)
    decision = verdict.decision()
    if as_json:
        out = {"decision": decision.model_dump(mode="json"), "rules": rows}
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"policy {policy.name} v{policy.version} ({policy.content_hash[:19]})")
    click.echo(f"mode {decision.mode} ({decision.mode_source}: {decision.mode_reason})")
    amount = (
        f"{fmt(decision.requested_risk_abs)} -> {fmt(decision.approved_risk_abs)}"
        if decision.approved
        else f"{fmt(decision.requested_risk_abs)} -> 0"
    )
    deciding = f" by `{decision.rule_id}`" if decision.rule_id else ""
    click.echo(f"decision {decision.decision_code} ({amount}){deciding}")
    for reason in decision.reasons:
        click.echo(f"  {reason}")
    width = max((len(r["rule_id"]) for r in rows), default=0)
    from .lang import syntax as s

    for i, row in enumerate(rows, 1):
        shadow = " (shadow)" if row.get("shadow") else ""
        crule = policy.checked.rules[i - 1]
        values = row["values"]
        limit = values.get(s.unparse(crule.expr)) if crule.spec.kind == "limit" else None
        numbers = (
            f" (limit {fmt(limit)}, risk {fmt(values.get('intent.risk'))})"
            if isinstance(limit, int | float) and "intent.risk" in values
            else ""
        )
        click.echo(f"{i:>2}. {row['rule_id']:<{width}}  {row['verdict']}{numbers}{shadow}")
        for key, value in row["values"].items():
            click.echo(f"      {key} = {fmt(value)}")


def schema_files() -> dict[str, Any]:
    """Every JSON Schema shipped in policy_engine/schemas/, by short name (`policy`)."""
    folder = files("policy_engine").joinpath("schemas")
    out: dict[str, Any] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            out[entry.name.removesuffix(".json").removesuffix(".schema")] = entry
    return out


@cli.command("schema")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the schema names and stop.")
def schema_command(name: str | None, list_only: bool) -> None:
    """Print the JSON Schemas, for editors and tools.

    With NAME, print only that schema (see --list); without, print the policy
    schema, or all of them as one JSON object keyed by name if there are
    several. Editors with the YAML language server pick it up from a first
    line `# yaml-language-server: $schema=<path or URL of policy.schema.json>`.
    """
    schemas = schema_files()
    if list_only:
        for key, entry in schemas.items():
            click.echo(f"{key}\t{entry.name}")
        return
    if name is not None:
        if name not in schemas:
            known = ", ".join(f"`{k}`" for k in schemas)
            raise UsageError(f"no schema `{name}` (known: {known})")
        click.echo(schemas[name].read_text("utf-8").rstrip("\n"))
        return
    if len(schemas) == 1:
        click.echo(next(iter(schemas.values())).read_text("utf-8").rstrip("\n"))
        return
    merged = {k: json.loads(e.read_text("utf-8")) for k, e in schemas.items()}
    click.echo(json.dumps(merged, indent=2))


# --- run and replay ---------------------------------------------------------------------------


class Progress:
    """A bar on stderr when it is a terminal; lines still reach stdout between redraws."""

    def __init__(self, desc: str, total: int | None) -> None:
        self.bar: Any = (
            tqdm(desc=desc, total=total, leave=False, unit=" events", file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )
        self.shared = sys.stdout.isatty()  # stdout and the bar share one terminal

    def echo(self, line: str) -> None:
        if self.bar is not None and self.shared:
            self.bar.write(line, file=sys.stdout)  # clears the bar, prints, redraws it
        else:
            click.echo(line)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def count_events(path: str) -> int | None:
    """How many events a JSON Lines file holds (for the bar's total); None if unreadable."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None


def outcome(record: dict[str, Any]) -> str:
    """approved / clipped / rejected."""
    if not record.get("approved"):
        return "rejected"
    return "clipped" if record.get("decision_code") == "approved_clipped" else "approved"


def decision_line(record: dict[str, Any]) -> str:
    """One line per decision: who, how much, the outcome, the rule and the reason."""
    from .lang.lexical import fmt

    who = " ".join(str(record.get(k) or "?") for k in ("strategy", "symbol"))
    amounts = f"{fmt(record.get('requested_risk_abs', 0.0))} -> {fmt(record.get('approved_risk_abs', 0.0))}"
    head = f"#{record.get('seq')} {record.get('intent_id') or '?'} {who} {amounts} {outcome(record).upper()}"
    code = record.get("decision_code", "")
    rule = record.get("rule_id")
    reasons = [str(r) for r in record.get("reasons") or []]
    if outcome(record) == "approved" and not rule:
        return f"{head} {code}"
    detail = "; ".join(reasons) if reasons else (rule or "")
    return f"{head} {code}: {detail}" if detail else f"{head} {code}"


@dataclass
class Tally:
    """Decisions counted by outcome, and rejections and clips by rule."""

    approved: int = 0
    clipped: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self.by_rule: dict[str, int] = {}
        self.clipped_by_rule: dict[str, int] = {}

    def add(self, record: dict[str, Any]) -> None:
        kind = outcome(record)
        setattr(self, kind, getattr(self, kind) + 1)
        key = str(record.get("rule_id") or record.get("decision_code") or "?")
        if kind == "rejected":
            self.by_rule[key] = self.by_rule.get(key, 0) + 1
        elif kind == "clipped":
            for clip in record.get("clips") or []:
                rid = str(clip.get("rule_id", "?")) if isinstance(clip, dict) else key
                self.clipped_by_rule[rid] = self.clipped_by_rule.get(rid, 0) + 1

    @property
    def total(self) -> int:
        return self.approved + self.clipped + self.rejected

    def lines(self) -> list[str]:
        out = [
            f"{_count(self.total, 'decision')}: {self.approved} approved, "
            f"{self.clipped} clipped, {self.rejected} rejected"
        ]
        for rule, n in sorted(self.clipped_by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  clipped by {rule}: {n}")
        for rule, n in sorted(self.by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  rejected by {rule}: {n}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.total,
            "approved": self.approved,
            "clipped": self.clipped,
            "rejected": self.rejected,
            "clipped_by_rule": dict(sorted(self.clipped_by_rule.items())),
            "rejected_by_rule": dict(sorted(self.by_rule.items())),
        }


def _events_or_exit(path: str) -> Iterator[dict[str, Any]]:
    """Events from a JSON Lines file; a malformed line is a usage error (exit 2)."""
    from .control.events import EventError
    from .control.journal import read_events

    try:
        yield from read_events(path)
    except EventError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read `{path}`: {exc}") from None


@cli.command("run")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.argument("events_path", metavar="EVENTS.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the decision records as JSON Lines (summary on stderr).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the event journal to this file (for `policy replay`).",
)
@click.option(
    "--equity",
    type=float,
    default=0.0,
    show_default=True,
    help="Starting equity (an `equity` event usually sets it).",
)
def run_command(
    policy_path: str, events_path: str, as_json: bool, journal_path: str | None, equity: float
) -> None:
    """Feed a stream of events through a portfolio controller.

    EVENTS.jsonl holds one JSON object per line: intents, fills, cancels,
    closes, equity updates, mode overrides and ticks (see docs/cli.md).
    Prints one line per decision with its reason, then a summary: approved,
    clipped, rejected by rule. Exit 0 once every event is applied.
    """
    from .control.controller import PortfolioController
    from .control.events import EventError, canonical

    policy = load_or_report(policy_path)
    try:
        ctl = PortfolioController(policy, equity=equity, journal=journal_path)
    except OSError as exc:
        raise UsageError(f"cannot write the journal: {exc}") from None
    tally = Tally()
    bar = Progress("running", count_events(events_path))
    mode = "normal"
    try:
        for n, event in enumerate(_events_or_exit(events_path), 1):
            try:
                record = ctl.apply(event)
            except EventError as exc:
                raise UsageError(f"{events_path}: event {n}: {exc}") from None
            bar.update()
            if not as_json and event.get("type") in _MODE_EVENTS:
                mode = _echo_mode_change(bar, ctl, mode)
            if record is None:
                continue
            tally.add(record)
            bar.echo(canonical(record) if as_json else decision_line(record))
    finally:
        bar.close()
        ctl.close()
    if as_json:
        click.echo(json.dumps({"summary": tally.as_dict()}), err=True)
    else:
        for line in tally.lines():
            click.echo(line)
        if journal_path:
            click.echo(f"journal written to {journal_path}")


_MODE_EVENTS = ("equity", "mode", "policy")


def _echo_mode_change(bar: Progress, ctl: Any, before: str) -> str:
    """A line when the portfolio mode moves, so a run shows why later decisions tighten."""
    state = ctl.get_portfolio_state()
    mode = str(state["mode"])
    if mode != before:
        from .lang.lexical import fmt

        bar.echo(
            f"== mode {before} -> {mode} ({state['mode_source']}: {state['mode_reason']}; "
            f"drawdown {fmt(round(state['drawdown'] * 100, 4))}%)"
        )
    return mode


def change_kind(old: dict[str, Any], new: dict[str, Any]) -> str:
    a, b = outcome(old), outcome(new)
    if a != b:
        return f"{a} -> {b}"
    if a == "rejected":
        return "rejected by another rule"
    return "clip amount changed"


def change_line(old: dict[str, Any], new: dict[str, Any]) -> str:
    from .lang.lexical import fmt

    who = " ".join(str(old.get(k) or "?") for k in ("strategy", "symbol"))
    rule = new.get("rule_id") if outcome(new) != "approved" else old.get("rule_id")
    by = f" by {rule}" if rule else ""
    return (
        f"#{old.get('seq')} {old.get('intent_id') or '?'} {who}: {change_kind(old, new)}{by} "
        f"({old.get('decision_code')} {fmt(old.get('approved_risk_abs', 0.0))} -> "
        f"{new.get('decision_code')} {fmt(new.get('approved_risk_abs', 0.0))})"
    )


def read_records(path: str) -> Iterator[dict[str, Any]]:
    """Decision records as `policy run --json` prints them (other lines are skipped)."""
    for record in _events_or_exit(path):
        if record.get("kind", "decision") == "decision" and "decision_code" in record:
            yield record


@cli.command("replay")
@click.argument("journal_path", metavar="JOURNAL", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False),
    help="What-if: replay under this policy instead and report the decisions that change.",
)
@click.option(
    "--records",
    "records_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Compare with these recorded decisions (`policy run --json` output) instead of a second replay.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print every difference as a JSON line, then the totals.",
)
def replay_command(
    journal_path: str, policy_path: str | None, records_path: str | None, as_json: bool
) -> None:
    """Re-run a journal and check that every decision is reproduced.

    Without --policy: exit 1 if any decision differs (from --records, or from
    an independent second replay). With --policy: a what-if report of the
    decisions that would change under the new policy, how, and by which rule,
    with totals (exit 0).
    """
    from .control.events import EventError
    from .control.replay import diff_records, replay
    from .diagnostics import PolicyError

    what_if = load_or_report(policy_path) if policy_path is not None else None
    if what_if is not None and records_path is not None:
        raise UsageError("give `--policy` or `--records`, not both")
    total = count_events(journal_path)
    bar = Progress("replaying", total)
    tally_old, tally_new = Tally(), Tally()
    kinds: dict[str, int] = {}
    rules: dict[str, int] = {}
    changed = 0
    try:
        replayed = replay(journal_path, what_if)
        if records_path is not None:
            original: Iterator[dict[str, Any]] = read_records(records_path)
        else:
            original = replay(journal_path)
        sentinel: dict[str, Any] = {}
        for old, new in _zip_longest(original, replayed, sentinel):
            bar.update()
            if old is sentinel or new is sentinel:
                raise UsageError(
                    "the recorded decisions and the replay have different lengths"
                    if records_path
                    else "replay produced a different number of decisions"
                )
            tally_old.add(old)
            tally_new.add(new)
            diff = diff_records(old, new)
            if diff is None:
                continue
            changed += 1
            kind = change_kind(old, new)
            kinds[kind] = kinds.get(kind, 0) + 1
            rule = new.get("rule_id") if outcome(new) != "approved" else old.get("rule_id")
            rules[str(rule or "-")] = rules.get(str(rule or "-"), 0) + 1
            if as_json:
                bar.echo(json.dumps({**diff, "change": kind, "rule_id": rule}, default=str))
            else:
                bar.echo(change_line(old, new))
    except (EventError, PolicyError) as exc:
        raise UsageError(f"cannot replay `{journal_path}`: {exc}") from None
    finally:
        bar.close()
    summary = {
        "decisions": tally_old.total,
        "changed": changed,
        "changes": dict(sorted(kinds.items())),
        "by_rule": dict(sorted(rules.items())),
        "before": tally_old.as_dict(),
        "after": tally_new.as_dict(),
    }
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    elif what_if is not None:
        click.echo(
            f"what-if {what_if.name} v{what_if.version}: {changed} of "
            f"{_count(tally_old.total, 'decision')} would change"
        )
        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
            click.echo(f"  {kind}: {n}")
        for rule, n in sorted(rules.items(), key=lambda kv: (-kv[1], kv[0])):
            click.echo(f"  by {rule}: {n}")
        before, after = tally_old, tally_new
        click.echo(
            f"  approved {before.approved} -> {after.approved}, clipped {before.clipped} -> "
            f"{after.clipped}, rejected {before.rejected} -> {after.rejected}"
        )
    elif changed:
        click.echo(f"{changed} of {_count(tally_old.total, 'decision')} not reproduced")
    else:
        against = "the recorded decisions" if records_path else "an independent replay"
        click.echo(f"all {_count(tally_old.total, 'decision')} reproduced (matches {against})")
    if what_if is None and changed:
        sys.exit(1)


def _zip_longest(
    a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], fill: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    from itertools import zip_longest

    yield from zip_longest(a, b, fillvalue=fill)


# --- entry points ---------------------------------------------------------------------------


def _entry(command: click.Command, argv: Sequence[str] | None) -> int:
    try:
        command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 2
    except Exception as exc:
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The `policy` console script."""
    sys.exit(_entry(cli, argv))


def check_main(argv: Sequence[str] | None = None) -> None:
    """The `policy-check` console script."""
    sys.exit(_entry(check_command, argv))


if __name__ == "__main__":  # pragma: no cover
    main()
