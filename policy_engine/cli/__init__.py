"""The command line: ``policy-check`` and ``policy`` (check, test, fmt, explain, schema, run,
replay, report, recover, journal repair, integrity, reset-latch, verify, worker, lsp).

The top layer. Exit codes everywhere: 0 clean, 1 findings (diagnostics,
rejected or changed decisions), 2 usage or internal error. Output meant for
people goes to stdout; progress bars go to stderr and only when stderr is a
terminal. Each command lives in its own module and imports what it needs
when it runs, so ``policy-check`` starts without the control plane.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from . import worker
from .check import CHECK_HELP, check_command
from .common import quiet_stdout
from .decision_tests import decision_tests_command
from .explain import explain_command
from .fmt import fmt_command
from .integrity import integrity_command
from .journal import journal_command
from .latch import reset_latch_command
from .lsp import lsp_command
from .recover import recover_command
from .replay import replay_command
from .report import report_command
from .run import run_command
from .schema import schema_command
from .verify import verify_command
from .worker import worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Risk limits as YAML policies: check, test, format, explain, run and replay them, and serve
    them on Temporal."""


cli.add_command(check_command, name="check")
cli.add_command(decision_tests_command)
cli.add_command(fmt_command)
cli.add_command(explain_command)
cli.add_command(schema_command)
cli.add_command(run_command)
cli.add_command(replay_command)
cli.add_command(integrity_command)
cli.add_command(recover_command)
cli.add_command(journal_command)
cli.add_command(worker_command)
cli.add_command(report_command)
cli.add_command(reset_latch_command)
cli.add_command(lsp_command)
cli.add_command(verify_command)


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
        quiet_stdout()  # the reader stopped reading (`| head`): not an error, not a finding
        return 0
    except Exception as exc:
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The `policy` console script."""
    code = _entry(cli, argv)
    if worker.ran_the_sdk():
        # The Temporal SDK's native threads can abort the interpreter's teardown
        # (temporalio/sdk-python#300, about 1 exit in 10 here): flush and skip it. Only
        # after `policy worker` itself ran: a caller that merely imported the SDK (a test
        # process calling `main`) must get its SystemExit, not lose the process.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def check_main(argv: Sequence[str] | None = None) -> None:
    """The `policy-check` console script."""
    sys.exit(_entry(check_command, argv))


__all__ = ["CHECK_HELP", "check_command", "check_main", "cli", "main"]
