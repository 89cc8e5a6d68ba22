"""``policy lsp``: the language server for editors, over stdio (docs/editors.md).

The server (policy_engine/lsp) is given what lives in layers beside it: how a decision
test file loads (``policy test``'s suite loader, so a test file shows the problems
``policy test`` would report on loading it) and the committed version of a policy (git's
``HEAD``, as ``policy-check --against HEAD`` reads it), for PT420.
"""

from __future__ import annotations

import click

from .check import read_old
from .common import UsageError


def _committed(path: str) -> bytes | None:
    """The policy as committed at HEAD, or None (not in git, new file, no git)."""
    try:
        raw, _ = read_old("HEAD", path)
    except UsageError:
        return None
    return raw


@click.command("lsp")
@click.option(
    "--stdio", is_flag=True, help="Speak over stdin/stdout (the default; for editors that pass it)."
)
def lsp_command(stdio: bool) -> None:
    """Run the language server (LSP 3.17 over stdio) for policies and their decision tests."""
    try:
        from ..lsp.server import build_server
    except ImportError as exc:  # pygls is the `lsp` extra
        raise UsageError(
            f"`policy lsp` needs the `lsp` extra: pip install 'policy-engine[lsp]' ({exc})"
        ) from None
    from importlib.metadata import version

    from ..testing.suite import load_problems

    server = build_server(version("policy-engine"), load_problems, _committed)
    server.start_io()


__all__ = ["lsp_command"]
