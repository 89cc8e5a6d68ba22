"""Driving `policy lsp` over stdio with pytest-lsp's client: open and edit buffers, wait for
the diagnostics of a version, apply the edits the server answers with."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features


class RecordingClient(LanguageClient):
    """pytest-lsp's client that also keeps every diagnostics notification, in order: a test
    waits for a buffer's version without missing one that arrived in the same read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published: list[lsp.PublishDiagnosticsParams] = []
        self.arrived = asyncio.Event()


def _record(client: RecordingClient, params: lsp.PublishDiagnosticsParams) -> None:
    client.diagnostics[params.uri] = params.diagnostics
    client.published.append(params)
    client.arrived.set()


def make_client() -> RecordingClient:
    client = RecordingClient(converter_factory=default_converter)
    register_lsp_features(
        client, {**DEFAULT_CLIENT_FEATURES, lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _record}
    )
    return client


SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "policy_engine.cli", "lsp"], client_factory=make_client
)
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


async def diagnostics(
    client: LanguageClient, uri: str, version: int | None, seen: int
) -> list[lsp.Diagnostic]:
    """The diagnostics the server publishes for ``uri`` at ``version`` (None: a closed
    buffer's), among the notifications after the first ``seen``."""
    assert isinstance(client, RecordingClient)
    while True:
        for params in client.published[seen:]:
            if params.uri == uri and params.version == version:
                return list(params.diagnostics)
        seen = len(client.published)
        client.arrived.clear()
        await asyncio.wait_for(client.arrived.wait(), GUARD_SECONDS)


def mark(client: LanguageClient) -> int:
    """How many diagnostics notifications arrived so far."""
    assert isinstance(client, RecordingClient)
    return len(client.published)


async def open_text(
    client: LanguageClient, path: Path, text: str | None = None, version: int = 1
) -> list[lsp.Diagnostic]:
    """Open ``path`` (holding ``text``, by default what is on disk); its diagnostics."""
    uri = path.as_uri()
    seen = mark(client)
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
    return await diagnostics(client, uri, version, seen)


async def change(
    client: LanguageClient, path: Path, text: str, version: int
) -> list[lsp.Diagnostic]:
    """Replace the whole buffer with ``text`` as ``version``; its diagnostics."""
    uri = path.as_uri()
    seen = mark(client)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    return await diagnostics(client, uri, version, seen)


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
