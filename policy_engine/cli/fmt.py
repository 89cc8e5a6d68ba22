"""``policy fmt [--check] PATH...``: rewrite policy files in the canonical layout.

Comments, key order and the spelling of every value are kept; indentation,
spacing and expressions (spacing, redundant parentheses) are made canonical
(document/formatter.py). A directory means every policy file below it (as
``policy-check`` finds them); a YAML file that is not a policy (no
``api_version: policy-engine/...``) is left alone. ``--check`` writes nothing
and exits 1 naming the files that would change. Exit 2 for a file that cannot
be formatted (invalid YAML) or a usage error.

The formatter's YAML library is pure Python and recursive, so a file first passes the
loader's guards (size, nesting, alias expansion, section budgets: what `policy-check`
refuses in milliseconds) and is refused with the loader's diagnostic, never formatted
for seconds into a RecursionError.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import diagnostics as d
from ..diagnostics import PolicyError
from ..document.yaml_source import parse_document, read_policy_bytes
from .check import policy_files
from .common import UsageError, plural

# What the loader refuses before it builds anything: a file too big, nested too deep, an
# alias bomb, a section over budget. Other load errors (a schema problem) are for
# `policy-check`; a file that is not a policy is left alone.
_GUARDS = frozenset((d.PT002, d.PT103, d.PT116))


@click.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file would change.")
def fmt_command(paths: tuple[str, ...], check: bool) -> None:
    """Rewrite policy files in the canonical layout (comments kept)."""
    from ..document.formatter import FormatError, format_policy

    if not paths:
        raise UsageError("give at least one policy file or directory")
    changed: list[str] = []
    failed = 0
    skipped = 0
    for path in policy_files(paths):
        try:
            raw = read_policy_bytes(path)
            parse_document(raw, path)
        except OSError as exc:
            click.echo(f"{path}: cannot read: {exc}", err=True)
            failed += 1
            continue
        except PolicyError as exc:
            guarded = [x for x in exc.diagnostics if x.code in _GUARDS]
            for x in guarded:
                click.echo(x.format(), err=True)
            if guarded:
                failed += 1
                continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            click.echo(f"{path}: cannot read: {exc}", err=True)
            failed += 1
            continue
        try:
            formatted = format_policy(text)
        except FormatError as exc:
            if "not a policy file" in str(exc):
                skipped += 1
                continue
            click.echo(f"{path}: {exc}", err=True)
            failed += 1
            continue
        if formatted == text:
            continue
        changed.append(path)
        if check:
            click.echo(f"would reformat {path}")
        else:
            Path(path).write_text(formatted, "utf-8")
            click.echo(f"reformatted {path}")
    total = len(policy_files(paths)) - skipped
    verb = "would be reformatted" if check else "reformatted"
    summary = f"{plural(len(changed), 'file')} {verb}, {total - len(changed) - failed} unchanged"
    click.echo(summary + (f", {failed} failed" if failed else ""))
    sys.exit(2 if failed else (1 if check and changed else 0))
