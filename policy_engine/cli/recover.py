"""``policy recover``: rebuild a controller from its journal and, optionally, continue it."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from .common import UsageError, durability_options, load_or_report, plural
from .run import Notes, feed


@click.command("recover")
@click.argument("journal_path", metavar="JOURNAL", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Put this policy in force after recovery (journaled like a reload) if it differs "
    "from the journal's.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Then feed these events (JSON Lines), appending them to the same journal.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the recovered state (and records) as JSON."
)
@durability_options
def recover_command(
    journal_path: str,
    policy_path: str | None,
    events_path: str | None,
    as_json: bool,
    fsync: str,
    fsync_events: int,
    fsync_ms: float,
    checkpoint_every: int,
) -> None:
    """Rebuild the exact state of JOURNAL's controller (after a crash or a stop).

    Checks the hash chain of every line, restores the last checkpoint and
    replays the events after it; then, with --events, continues the same
    journal. Exit 1 if the journal is damaged or has a torn last line (repair
    it first: `policy journal repair`), 2 if another writer holds it.
    """
    from ..control.controller import PortfolioController
    from ..control.events import EventError
    from ..control.journal import JournalError, TornJournalError, durability_of
    from ..diagnostics import PolicyError

    policy = load_or_report(policy_path) if policy_path is not None else None
    notes = Notes()
    try:
        ctl = PortfolioController.recover(
            journal_path,
            durability=durability_of(fsync, fsync_events, fsync_ms),
            checkpoint_every=checkpoint_every or None,
            clock=None,  # an events file is history (or a simulation): no wall-clock skew bound
            records=notes,
        )
    except (TornJournalError, EventError, PolicyError) as exc:
        click.echo(str(exc))
        click.echo(f"not recovered: {journal_path} is unchanged")
        raise SystemExit(1) from None
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    report = ctl.recovery
    assert report is not None
    if policy is not None:
        put = ctl.use_policy(policy)  # the rules of a reload: a lower version is refused
        if not put["ok"]:
            ctl.close()
            click.echo(f"recovered, but {policy_path} was not put in force: {put['error']}")
            raise SystemExit(1)
    state = ctl.get_portfolio_state()
    if as_json:
        click.echo(json.dumps({"recovery": asdict(report), "state": state}, default=str))
    else:
        where = (
            f"checkpoint at line {report.checkpoint_line} + {plural(report.replayed, 'event')}"
            if report.checkpoint_line is not None
            else f"{plural(report.replayed, 'event')} replayed from the start"
        )
        totals = state["totals"]
        click.echo(
            f"recovered {journal_path}: {plural(report.events, 'event')} ({where}) in "
            f"{report.seconds:.2f}s; chain verified, head {report.head}"
        )
        click.echo(
            f"state: policy {state['policy']['name']} v{state['policy']['version']}, mode "
            f"{state['mode']}, equity {state['equity']:g}, {totals['active_trades']} live trades, "
            f"active risk {totals['active_risk']:g}, reserved {totals['reserved_risk']:g}"
        )
    if events_path is None:
        ctl.close()
        return
    feed(ctl, events_path, as_json, f"journal continued: {journal_path}", notes)
