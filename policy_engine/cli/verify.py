"""``policy verify POLICY...``: prove with z3 what a policy can never do, or show the trade.

Every property is ``proved``, ``violated`` (with a counterexample the real engine
reproduced) or ``unknown`` (with the reason). ``--emit-tests FILE`` writes the
counterexamples as a decision-test file that ``policy test FILE`` passes. Exit 0
every property proved, 1 a property violated, 2 usage or a policy that does not
load, 3 inconclusive (some unknown, none violated). docs/verify.md is the reference.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from .common import UsageError

FORMATS = ("text", "json")
EXIT_VIOLATED, EXIT_UNKNOWN = 1, 3


@click.command("verify")
@click.argument("policies", nargs=-1, type=click.Path())
@click.option("--against", metavar="OLD", help="An older version: prove no-wider and equivalent.")
@click.option(
    "--property",
    "properties",
    multiple=True,
    metavar="NAME",
    help="Only this property (repeatable): caps-hold, flatten-only-holds, modes-monotonic, "
    "rules-reachable, never-errors, no-wider, equivalent, or a policy's own `properties:` id.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Per solver query.",
)
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text")
@click.option("--emit-tests", metavar="FILE", help="Write the counterexamples as decision tests.")
def verify_command(
    policies: tuple[str, ...],
    against: str | None,
    properties: tuple[str, ...],
    timeout: float,
    output_format: str,
    emit_tests: str | None,
) -> None:
    """Prove the built-in properties of each POLICY (with `--against`, that it is no wider
    than, or equivalent to, OLD)."""
    results = run_verify(policies, against, properties, timeout)
    if emit_tests is not None:
        write_tests(emit_tests, results)
    if output_format == "json":
        click.echo(json.dumps({"results": [r.as_json() for r in results]}, indent=2))
    else:
        click.echo(format_text(results))
    sys.exit(exit_code(results))


def run_verify(
    paths: tuple[str, ...] | list[str],
    against: str | None,
    properties: tuple[str, ...],
    timeout: float,
) -> list[Any]:
    """Load the policies (a usage error when one does not) and verify each."""
    from ..diagnostics import PolicyError
    from ..engine.policy import load_policy

    try:
        from ..verify import AGAINST, BUILTIN, verify
    except ImportError as exc:  # z3-solver is the `verify` extra
        raise UsageError(
            f"`policy verify` needs the `verify` extra (z3): pip install 'policy-engine[verify]' "
            f"({exc})"
        ) from None

    if not paths:
        raise UsageError("give at least one policy file")
    if against is not None and len(paths) != 1:
        raise UsageError("`--against` compares one policy file; give exactly one")
    try:
        loaded = [load_policy(p) for p in paths]
        old = load_policy(against) if against is not None else None
    except (PolicyError, OSError) as exc:
        raise UsageError(f"a policy does not load: {exc}") from None
    results: list[Any] = []
    for policy in loaded:
        own = [p.id for p in getattr(policy.checked.spec, "properties", ())]
        known = [*BUILTIN, *own, *(AGAINST if old is not None else ())]
        wanted = list(properties) or known
        wrong = [n for n in wanted if n not in known]
        if wrong:
            hint = (
                " (`--against` gives no-wider and equivalent)" if set(wrong) & set(AGAINST) else ""
            )
            raise UsageError(
                f"unknown property {', '.join(wrong)}{hint}; known: {', '.join(known)}"
            )
        results += verify(policy, wanted, timeout, old)
    return results


def exit_code(results: list[Any]) -> int:
    if any(r.status == "violated" for r in results):
        return EXIT_VIOLATED
    if any(r.status == "unknown" for r in results):
        return EXIT_UNKNOWN
    return 0


def format_text(results: list[Any]) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"{r.policy}: {r.property}: {r.status} ({r.seconds:.2f}s) {r.reason}")
        for case in r.cases:
            lines.append(f"    {case.note}")
            lines.append(f"      state:  {_flow(case.state)}")
            lines.append(f"      intent: {_flow(case.intent)}")
            who = f"{case.policy.name} v{case.policy.version}"
            lines.append(f"      engine ({who}): {_flow(case.decision)}")
    counts = {
        s: sum(1 for r in results if r.status == s) for s in ("proved", "violated", "unknown")
    }
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def write_tests(path: str, results: list[Any]) -> None:
    """The counterexamples of the violated properties as one decision-test file: each case
    expects what the engine decided, so `policy test` passes exactly when it still does."""
    cases: list[dict[str, Any]] = []
    tested: set[str] = set()
    for r in results:
        for n, case in enumerate(r.cases):
            if case.policy is not r.cases[0].policy and r.property in ("no-wider", "equivalent"):
                continue  # the old version's decision is in the note; the file tests the new
            tested.add(case.policy.path or "")
            expect = {
                k: case.decision[k]
                for k in ("decision_code", "approved", "approved_risk_abs", "rule_id", "mode")
            }
            intent = {k: v for k, v in case.intent.items() if k != "group"}
            written: dict[str, Any] = {
                "id": f"{r.property}-{len(cases) + 1}",
                "note": _note(r, n),
                "state": case.state,
                "intent": intent,
            }
            if "group" in case.intent:  # decided as a member of a group (a case's `group`)
                written["group"] = case.intent["group"]
            cases.append({**written, "expect": expect})
    if len(tested) > 1:
        raise UsageError("`--emit-tests` writes one policy's tests: verify one policy at a time")
    if not cases:  # nothing violated with a trade to show: no file (an old one stays)
        click.echo(f"note: no counterexample to write to {path}", err=True)
        return
    target = Path(path)
    policy = os.path.relpath(next(iter(tested)), target.parent) if tested else None
    doc = {"policy": policy, "cases": cases} if policy else {"cases": cases}
    target.write_text(
        "# written by `policy verify --emit-tests`: each case is a counterexample the engine\n"
        "# reproduces (the expectations are its decisions)\n"
        + yaml.safe_dump(doc, sort_keys=False, width=100),
        encoding="utf-8",
    )


def _note(result: Any, n: int) -> str:
    case = result.cases[n]
    others = [c for c in result.cases if c is not case]
    text = f"{result.property}: {result.reason}"
    for other in others:
        text += f"; {other.policy.name} v{other.policy.version} decides {other.decision['decision_code']} {other.decision['approved_risk_abs']}"
    return text
