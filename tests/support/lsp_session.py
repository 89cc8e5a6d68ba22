"""Driving `policy lsp` over stdio with pytest-lsp's client: open and edit buffers, wait for
the diagnostics of a version, apply the edits the server answers with."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "policy_engine.cli", "lsp"])
ROOT = Path(__file__).resolve().parents[2]
GUARD_SECONDS = 120  # a hang fails the test instead of the run; never a timing assertion


def bundled_policies(here: Path, commit: bool = False) -> Path:
    """A copy of the bundled policies and their tests in ``here`` (committed to a new git
    repository with ``commit``)."""
    for p in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(p, here / p.name)
    if commit:
        git = ["git", "-C", str(here), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "policies"], check=True)
    return here


def initialize_params(root: Path) -> lsp.InitializeParams:
    return lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(), workspace_folders=None
    )


async def diagnostics(client: LanguageClient, uri: str, version: int) -> list[lsp.Diagnostic]:
    """The diagnostics the server publishes for ``uri`` at ``version``."""
    while True:
        params = await asyncio.wait_for(
            client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), GUARD_SECONDS
        )
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)


async def open_text(
    client: LanguageClient, path: Path, text: str | None = None, version: int = 1
) -> list[lsp.Diagnostic]:
    """Open ``path`` (holding ``text``, by default what is on disk); its diagnostics."""
    uri = path.as_uri()
    waiting = diagnostics(client, uri, version)
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri,
                language_id="yaml",
                version=version,
                text=path.read_text("utf-8") if text is None else text,
            )
        )
    )
    return await waiting


async def change(
    client: LanguageClient, path: Path, text: str, version: int
) -> list[lsp.Diagnostic]:
    """Replace the whole buffer with ``text`` as ``version``; its diagnostics."""
    uri = path.as_uri()
    waiting = diagnostics(client, uri, version)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    return await waiting


def close(client: LanguageClient, path: Path) -> None:
    client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=path.as_uri()))
    )


def apply(text: str, edits: Sequence[lsp.TextEdit]) -> str:
    """``text`` with ``edits`` applied (ASCII text: UTF-16 columns are characters)."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(p: lsp.Position) -> int:
        if p.line >= len(lines):
            return len(text)
        return min(starts[p.line] + p.character, len(text))

    for edit in sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    ):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def position_of(text: str, needle: str, nth: int = 0, shift: int = 0) -> lsp.Position:
    """Where the ``nth`` occurrence of ``needle`` starts (plus ``shift`` characters)."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += shift
    line = text.count("\n", 0, at)
    return lsp.Position(line=line, character=at - (text.rfind("\n", 0, at) + 1))


def doc(path: Path) -> lsp.TextDocumentIdentifier:
    return lsp.TextDocumentIdentifier(uri=path.as_uri())
