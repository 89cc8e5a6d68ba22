"""``policy integrity POLICY``: the `integrity` block that seals a policy file.

A policy may declare what it must hold (its rule count, the digest of its
content); a file that does not match is refused at load (PT113), so a file cut
at a rule boundary, still valid YAML, never replaces a working policy. This
command prints the block (on stdout) and where to paste it (on stderr): at the top
of the file, right after the header, where a truncation cannot remove it.
"""

from __future__ import annotations

import sys

import click

from ..diagnostics import PolicyError
from ..document.build import SEAL_HEADER, integrity_block
from ..document.yaml_source import load_document
from .common import UsageError


@click.command("integrity")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
def integrity_command(policy_path: str) -> None:
    """Print the `integrity` block (rule count and content digest) for POLICY.

    Paste it at the top of the file, right after `api_version`, `name` and
    `version` (a block anywhere later is refused, PT113: a truncation could cut it
    off); re-run after every edit (a digest that does not match refuses the file,
    PT113). Exit 0, or 1 if the file does not parse.
    """
    try:
        doc = load_document(policy_path)
    except PolicyError as exc:
        for x in exc.diagnostics:
            click.echo(x.format(), err=True)
        sys.exit(1)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise UsageError(f"`{policy_path}` has no `rules` list")
    after = next((k for k in reversed(SEAL_HEADER) if k in data), None)
    where = f"right after `{after}:`" if after else "as the first key"
    click.echo(f"paste this block at the top of {policy_path}, {where}:", err=True)
    click.echo(integrity_block(data), nl=False)


__all__ = ["integrity_command"]
