"""``policy reset-latch POLICY NAME --reason TEXT``: the journaled event that clears a latch.

A latch (``latches:``) stays set until the trading-day rollover or an explicit reset,
and a reset is an event like any other: journaled with its reason, replayed
exactly. This command checks the latch against the policy (a name it does not
declare is refused, with a suggestion) and prints the event line, or appends it
to an events file (`policy run`'s input, a scenario's stream). A live control
plane takes the same event through ``PortfolioController.reset_latch`` (or its
``apply``), which refuses a reset that would change nothing.
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import UsageError, load_or_report


@click.command("reset-latch", short_help="Print (or append) the event that resets a latch.")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.argument("name")
@click.option("--reason", required=True, help="Why it is reset (journaled with it).")
@click.option(
    "--timestamp",
    default=None,
    help="Event time, ISO 8601 with an offset (default: none, the clock does not move).",
)
@click.option(
    "--append",
    "append_path",
    type=click.Path(dir_okay=False),
    help="Append the event to this events file instead of printing it.",
)
def reset_latch_command(
    policy_path: str, name: str, reason: str, timestamp: str | None, append_path: str | None
) -> None:
    """Print the `reset_latch` event for latch NAME of POLICY (or append it with --append).

    Exit 0, 1 if the policy does not load, 2 for a latch the policy does not
    declare, an empty or too long reason, or a malformed timestamp.
    """
    from ..control.events import EventError, ResetLatchEvent, canonical, check_reason
    from ..control.events import optional_timestamp as parse_ts
    from ..diagnostics import suggest

    policy = load_or_report(policy_path)
    if name not in policy.latch_names:
        hint = suggest(name, policy.latch_names)
        raise UsageError(
            f"policy {policy.name} declares no latch `{name}`" + (f" ({hint})" if hint else "")
        )
    try:
        if not reason.strip():
            raise EventError("reason must say why the latch is reset")
        event = ResetLatchEvent(name, check_reason(reason), parse_ts(timestamp)).journal()
    except EventError as exc:
        raise UsageError(str(exc)) from None
    line = canonical(event)
    if append_path is None:
        click.echo(line)
        return
    try:
        with Path(append_path).open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError as exc:
        raise UsageError(f"cannot append to `{append_path}`: {exc}") from None
    click.echo(f"appended to {append_path}: {line}")


__all__ = ["reset_latch_command"]
