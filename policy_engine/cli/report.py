"""``policy report``: a trading day drawn as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    Progress,
    UsageError,
    count_events,
    equity_option,
    events_or_exit,
    load_or_report,
)


@click.command("report")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.argument("events_path", metavar="EVENTS.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Write the HTML report to this file.",
)
@click.option(
    "--policy",
    "what_if_path",
    type=click.Path(exists=True, dir_okay=False),
    help="What-if: draw the same day under this policy too, and list the decisions it changes.",
)
@equity_option
@click.option("--title", default="Trading day report", show_default=True, help="The page title.")
def report_command(
    policy_path: str,
    events_path: str,
    output: str,
    what_if_path: str | None,
    equity: float,
    title: str,
) -> None:
    """Draw a day of events as one HTML file that opens offline.

    Runs EVENTS.jsonl through POLICY as `policy run` does and draws: portfolio
    heat against its cap over event time with the mode shaded, each cohort's
    heat against its cap, every decision coloured by outcome, the binding rules,
    and where reserved risk went (filled, expired, cancelled, late). With
    --policy, the same day under the new policy is overlaid and the decisions
    it changes are listed. Needs matplotlib (`pip install 'policy-engine[report]'`).
    """
    from ..control.events import EventError
    from ..report import build_report, missing, passes

    why = missing()
    if why is not None:
        raise UsageError(why)
    policy = load_or_report(policy_path)
    what_if = load_or_report(what_if_path) if what_if_path is not None else None
    total = count_events(events_path)
    bar = Progress("reporting", None if total is None else total * passes(what_if is not None))
    sources = Path(events_path).name + (
        f" · what-if {Path(what_if_path).name}" if what_if_path else ""
    )
    try:
        html = build_report(
            policy,
            lambda: events_or_exit(events_path),
            what_if=what_if,
            equity=equity,
            title=title,
            sources=sources,
            tick=bar.update,
        )
    except EventError as exc:
        raise UsageError(f"{events_path}: {exc}") from None
    finally:
        bar.close()
    try:
        Path(output).write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write `{output}`: {exc}") from None
    click.echo(f"report written to {output} ({len(html.encode()) // 1024} KB)")
