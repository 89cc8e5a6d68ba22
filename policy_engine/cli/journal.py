"""``policy journal repair``: drop a journal's torn last line, explicitly."""

from __future__ import annotations

import sys

import click

from .common import UsageError, plural


@click.group("journal")
def journal_command() -> None:
    """Maintain a journal file (see docs/operations.md)."""


@journal_command.command("repair")
@click.argument("journal_path", metavar="JOURNAL", type=click.Path(exists=True, dir_okay=False))
def repair_command(journal_path: str) -> None:
    """Drop the torn last line of JOURNAL (a write cut short by a crash).

    Every complete line's chain is checked first; the dropped bytes are kept in
    JOURNAL.torn. Exit 0 when the journal is whole (repaired or already), 1 when
    its problem is not a torn last line (nothing is changed), 2 when it cannot be
    opened or a live writer holds it.
    """
    from ..control.journal import JournalError
    from ..control.verify import JournalIntegrityError, repair

    try:
        done = repair(journal_path)
    except JournalIntegrityError as exc:
        click.echo(str(exc))
        click.echo(
            f"not repaired: {journal_path} is damaged before its last line (nothing changed)"
        )
        sys.exit(1)
    except (JournalError, OSError) as exc:
        raise UsageError(str(exc)) from None
    scan = done.scan
    state = f"{plural(scan.events, 'event')} in {plural(scan.lines, 'line')}"
    if not done.dropped:
        click.echo(f"{journal_path}: nothing to repair ({state}; no torn line)")
        return
    click.echo(
        f"dropped the torn line {done.line} of {journal_path} ({plural(done.dropped, 'byte')}, "
        f"kept in {done.saved}); {state} remain"
    )
