"""``policy replay``: re-run a journal, check it reproduces, or ask what a new policy changes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import click

from ..lang.lexical import fmt
from .common import (
    Progress,
    UsageError,
    count_events,
    events_or_exit,
    load_or_report,
    plural,
)
from .run import Tally


def change_line(old: dict[str, Any], new: dict[str, Any]) -> str:
    from ..control.replay import change_kind, change_rule

    who = " ".join(str(old.get(k) or "?") for k in ("strategy", "symbol"))
    rule = change_rule(old, new)
    by = f" by {rule}" if rule else ""
    return (
        f"#{old.get('seq')} {old.get('intent_id') or '?'} {who}: {change_kind(old, new)}{by} "
        f"({old.get('decision_code')} {fmt(old.get('approved_risk_abs', 0.0))} -> "
        f"{new.get('decision_code')} {fmt(new.get('approved_risk_abs', 0.0))})"
    )


def read_records(path: str) -> Iterator[dict[str, Any]]:
    """Decision records as `policy run --json` prints them (other lines are skipped)."""
    for record in events_or_exit(path):
        if record.get("kind", "decision") == "decision" and "decision_code" in record:
            yield record


@click.command("replay")
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
@click.option(
    "--verify",
    is_flag=True,
    help="Also check the journal's hash chain (any edited byte) and that every checkpoint "
    "equals the state its events produce; exit 1 if not, or if the journal is unchained.",
)
def replay_command(
    journal_path: str,
    policy_path: str | None,
    records_path: str | None,
    as_json: bool,
    verify: bool,
) -> None:
    """Re-run a journal and check that every decision is reproduced.

    Without --policy: exit 1 if any decision differs (from --records, or from
    an independent second replay). With --policy: a what-if report of the
    decisions that would change under the new policy, how, and by which rule,
    with totals (exit 0). A torn last line (a write cut by a crash) or, with
    --verify, a broken chain is reported with exit 1.
    """
    from ..control.events import EventError
    from ..control.journal import TornJournalError
    from ..control.replay import change_kind, change_rule, diff_records, replay
    from ..control.verify import JournalIntegrityError, Scan, verified_replay
    from ..diagnostics import PolicyError

    what_if = load_or_report(policy_path) if policy_path is not None else None
    if what_if is not None and records_path is not None:
        raise UsageError("give `--policy` or `--records`, not both")
    total = count_events(journal_path)
    bar = Progress("replaying", total)
    tally_old, tally_new = Tally(), Tally()
    kinds: dict[str, int] = {}
    rules: dict[str, int] = {}
    changed = 0
    scan = Scan(journal_path)
    as_recorded = verified_replay(journal_path, scan) if verify else replay(journal_path)
    try:
        if records_path is not None:
            original: Iterator[dict[str, Any]] = read_records(records_path)
            replayed = as_recorded
        else:
            original = as_recorded
            replayed = replay(journal_path, what_if)
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
            rule = change_rule(old, new)
            rules[str(rule or "-")] = rules.get(str(rule or "-"), 0) + 1
            if as_json:
                bar.echo(json.dumps({**diff, "change": kind, "rule_id": rule}, default=str))
            else:
                bar.echo(change_line(old, new))
    except (TornJournalError, JournalIntegrityError) as exc:
        bar.close()
        click.echo(str(exc))
        if isinstance(exc, JournalIntegrityError):
            click.echo(f"verification failed: {journal_path} was changed after it was written")
        sys.exit(1)
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
    if verify:
        summary["journal"] = {
            "chained": bool(scan.chained),
            "lines": scan.lines,
            "events": scan.events,
            "checkpoints": len(scan.checkpoints),
            "head": scan.head,
        }
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    elif what_if is not None:
        click.echo(
            f"what-if {what_if.name} v{what_if.version}: {changed} of "
            f"{plural(tally_old.total, 'decision')} would change"
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
        click.echo(f"{changed} of {plural(tally_old.total, 'decision')} not reproduced")
    else:
        against = "the recorded decisions" if records_path else "an independent replay"
        click.echo(f"all {plural(tally_old.total, 'decision')} reproduced (matches {against})")
    if verify and not as_json:
        click.echo(verify_line(scan))
    if (what_if is None and changed) or (verify and not scan.chained):
        sys.exit(1)


def verify_line(scan: Any) -> str:
    """What --verify established (or why it could not)."""
    if not scan.chained:
        return (
            f"{scan.path} is unchained (written before journals were chained): its lines "
            "cannot be verified"
        )
    return (
        f"chain verified: {plural(scan.lines, 'line')}, {plural(scan.events, 'event')}, "
        f"{plural(len(scan.checkpoints), 'checkpoint')} equal to the replayed "
        f"state; head {scan.head}"
    )


def _zip_longest(
    a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], fill: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    from itertools import zip_longest

    yield from zip_longest(a, b, fillvalue=fill)
