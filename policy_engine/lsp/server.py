"""The pygls server: open buffers, debounced diagnostics, and every request handler.

Checking runs on the event loop, one buffer at a time: a burst of keystrokes arrives as
a burst of `didChange` notifications, and only the last version is checked, a short
pause after the burst (:data:`DEBOUNCE_SECONDS`). Requests (hover, completion, ...)
analyse the version they are asked about, lazily: a completion never waits for lints.

What the package below this one cannot know is injected by ``policy lsp`` (cli/lsp.py):
how a decision test file loads (``policy test``'s suite loader) and the committed version
of a policy (for PT420, as ``policy-check --against HEAD`` reports it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import diagnostics as d
from ..analysis.check import Result, check_bytes
from ..analysis.diff import version_check
from ..diagnostics import Diagnostic, Span
from ..document.yaml_source import says_policy
from . import actions, features
from .index import Analysis, Occurrence

DEBOUNCE_SECONDS = 0.02
IDLE_SECONDS = 0.5  # no change for this long: format ahead of the request
FORMATS_KEPT = 8
TEST_SUFFIX = "_test.yaml"
_NEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEW_QUOTED_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_QUOTED_KINDS = frozenset({"mode", "cohort", "strategy", "symbol"})
BUILTIN_MODE = "normal"  # the checker requires it first, by this name

# (test file path, its text, the text of an open buffer by path) -> what `policy test` says
TestFileProblems = Callable[[str, str, Callable[[str], str | None]], list[Diagnostic]]
Committed = Callable[[str], bytes | None]


def _codes_url() -> str | None:
    """docs/codes.md of this checkout, where the code of every diagnostic is explained."""
    codes = Path(__file__).resolve().parents[2] / "docs" / "codes.md"
    return str(from_fs_path(str(codes))) if codes.is_file() else None


class PolicyServer(LanguageServer):
    """The language server of policy files and their decision tests."""

    def __init__(
        self,
        version: str,
        test_file_problems: TestFileProblems | None = None,
        committed: Committed | None = None,
    ) -> None:
        super().__init__("policy-lsp", version)
        self.test_file_problems = test_file_problems
        self.committed = committed
        self.codes_url = _codes_url()
        self._analyses: dict[str, tuple[int | None, Analysis]] = {}
        self._baselines: dict[str, Result | None] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._formats: dict[str, asyncio.Future[str | None]] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}

    @property
    def encoding(self) -> str:
        """The position encoding agreed with the client at initialisation."""
        chosen = self.workspace.position_encoding or "utf-16"
        return str(getattr(chosen, "value", chosen))

    # --- buffers --------------------------------------------------------------------------
    def analysis(self, uri: str) -> Analysis:
        """The analysis of the open buffer ``uri`` at its current version."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"`{uri}` is not open")
        cached = self._analyses.get(uri)
        if cached is not None and cached[0] == doc.version and cached[1].text == doc.source:
            return cached[1]
        made = Analysis(path_of(uri), doc.source, cached[1] if cached else None, self.encoding)
        self._analyses[uri] = (doc.version, made)
        return made

    def forget(self, uri: str) -> None:
        self._analyses.pop(uri, None)
        self._baselines.pop(uri, None)
        for handles in (self._pending, self._idle):
            handle = handles.pop(uri, None)
            if handle is not None:
                handle.cancel()
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    def schedule(self, uri: str) -> None:
        """Check ``uri`` once the burst of changes it is in has ended."""
        handle = self._pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._pending[uri] = loop.call_later(DEBOUNCE_SECONDS, self.publish, uri)

    def publish(self, uri: str) -> None:
        self._pending.pop(uri, None)
        if uri not in self.workspace.text_documents:
            return
        a = self.analysis(uri)
        found = self.findings(uri, a)
        params = lsp.PublishDiagnosticsParams(
            uri=uri,
            diagnostics=actions.to_lsp(a, found, self.codes_url),
            version=self.workspace.text_documents[uri].version,
        )
        self.text_document_publish_diagnostics(params)
        if not a.is_test_file:
            for other, b in self.group(uri, a)[1:]:  # open decision tests see the new policy
                if b.is_test_file and other in self.workspace.text_documents:
                    self.schedule(other)
            idle = self._idle.pop(uri, None)
            if idle is not None:
                idle.cancel()
            loop = asyncio.get_running_loop()
            self._idle[uri] = loop.call_later(IDLE_SECONDS, self._format_ahead, uri)

    def _format_ahead(self, uri: str) -> None:
        """After a pause in typing, format in the background so that format-on-save and
        "Format Document" answer at once."""
        self._idle.pop(uri, None)
        doc = self.workspace.text_documents.get(uri)
        if doc is not None:
            self._format_job(doc.source)

    async def formatted(self, text: str) -> str | None:
        """``policy fmt``'s output for ``text``, formatted off the event loop (a long policy
        takes ruamel.yaml a second or more) and remembered: the formatting that follows a
        pause in typing was already done during the pause."""
        return await asyncio.shield(self._format_job(text))

    def _format_job(self, text: str) -> asyncio.Future[str | None]:
        job = self._formats.get(text)
        if job is None:
            job = asyncio.ensure_future(asyncio.to_thread(actions.formatted, text))
            self._formats[text] = job
            while len(self._formats) > FORMATS_KEPT:  # the oldest texts are not coming back
                del self._formats[next(iter(self._formats))]
        return job

    def findings(self, uri: str, a: Analysis) -> list[Diagnostic]:
        """What `policy-check` says of a policy (PT420 against its committed version too),
        or what `policy test` says on loading a decision test file; PT499 (as `policy-check`
        says it) when checking itself fails, never a server that stops answering."""
        try:
            return self._findings(uri, a)
        except Exception as exc:
            message = f"internal error: {type(exc).__name__}: {exc}"
            return [d.diagnostic(d.PT499, message, Span(a.path))]

    def _findings(self, uri: str, a: Analysis) -> list[Diagnostic]:
        if a.is_test_file:
            if a.doc is None or self.test_file_problems is None:
                return a.load_problems
            return self.test_file_problems(a.path, a.text, self.buffer_text)
        if not says_policy(a.text.encode("utf-8")):
            return []  # some other YAML file (a CI workflow): not ours to judge
        found = list(a.result.diagnostics)
        baseline = self.baseline(uri, a.path)
        if baseline is not None and a.result.checked is not None:
            found += version_check(baseline, a.result)
        return found

    def buffer_text(self, path: str) -> str | None:
        """The text of ``path`` as the editor holds it, if it is open."""
        doc = self.workspace.text_documents.get(str(from_fs_path(path)))
        return str(doc.source) if doc is not None else None

    def baseline(self, uri: str, path: str) -> Result | None:
        """The committed version of the policy, checked once per opened buffer."""
        if uri not in self._baselines:
            raw = self.committed(path) if self.committed is not None else None
            self._baselines[uri] = check_bytes(raw, path) if raw is not None else None
        return self._baselines[uri]

    # --- the files that name the same things: a policy and its decision tests ------------
    def group(self, uri: str, a: Analysis) -> list[tuple[str, Analysis]]:
        """This buffer, its policy (for a test file), and every decision test file beside
        the policy that tests it (`<name>_test.yaml`, or one whose `policy:` names it)."""
        here = Path(a.path)
        if a.is_test_file:
            named = a.data.get("policy")
            name = named if isinstance(named, str) else here.name[: -len(TEST_SUFFIX)] + ".yaml"
            policy = here.parent / name
        else:
            policy = here
        files = [policy]
        mention = re.compile(
            rf"^policy:[ \t]*[\"']?{re.escape(policy.name)}[\"']?[ \t]*(#.*)?$", re.M
        )
        for test in sorted(policy.parent.glob(f"*{TEST_SUFFIX}")):
            if test.name == policy.stem + TEST_SUFFIX or mention.search(self._read(test)):
                files.append(test)
        out = [(uri, a)]
        for path in files:
            other = str(from_fs_path(str(path)))
            if other == uri:
                continue
            if other in self.workspace.text_documents:
                out.append((other, self.analysis(other)))
            elif path.is_file():
                out.append((other, Analysis(str(path), self._read(path), None, self.encoding)))
        return out

    def _read(self, path: Path) -> str:
        uri = str(from_fs_path(str(path)))
        if uri in self.workspace.text_documents:
            return str(self.workspace.text_documents[uri].source)
        try:
            return path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return ""

    def everywhere(
        self, uri: str, a: Analysis, kind: str, name: str
    ) -> list[tuple[lsp.Location, bool]]:
        """Every place the name is written in the buffer's group of files, and whether each
        is its definition."""
        return [
            (lsp.Location(uri=u, range=b.lines.range(o.line, o.col, o.line, o.end)), o.definition)
            for u, b in self.group(uri, a)
            for o in b.of(kind, name)
        ]


def path_of(uri: str) -> str:
    return to_fs_path(uri) or uri


def _renamable(
    server: PolicyServer, uri: str, position: lsp.Position
) -> tuple[Analysis, Occurrence]:
    a, found = _target(server, uri, position)
    if (found.kind, found.name) == ("mode", BUILTIN_MODE):
        raise JsonRpcInvalidParams("`normal` is the mode every policy starts in; it keeps its name")
    return a, found


def _target(server: PolicyServer, uri: str, position: lsp.Position) -> tuple[Analysis, Occurrence]:
    a = server.analysis(uri)
    line, col = a.lines.cursor(position)
    found = a.at(line, col)
    if found is None:
        raise JsonRpcInvalidParams("no declared name (param, mode, cohort, ...) here")
    return a, found


def build_server(
    version: str,
    test_file_problems: TestFileProblems | None = None,
    committed: Committed | None = None,
) -> PolicyServer:
    """The server with every feature registered."""
    server = PolicyServer(version, test_file_problems, committed)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PolicyServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PolicyServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PolicyServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PolicyServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", " "])
    )
    def completion(ls: PolicyServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        a = ls.analysis(params.text_document.uri)
        line, col = a.lines.cursor(params.position)
        return lsp.CompletionList(is_incomplete=False, items=features.completion(a, line, col))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: PolicyServer, params: lsp.HoverParams) -> lsp.Hover | None:
        a = ls.analysis(params.text_document.uri)
        line, col = a.lines.cursor(params.position)
        return features.hover(a, line, col)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: PolicyServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
        uri = params.text_document.uri
        a, found = _target(ls, uri, params.position)
        return [loc for loc, is_def in ls.everywhere(uri, a, found.kind, found.name) if is_def]

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(ls: PolicyServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        uri = params.text_document.uri
        a, found = _target(ls, uri, params.position)
        wanted = params.context.include_declaration
        return [
            loc
            for loc, is_def in ls.everywhere(uri, a, found.kind, found.name)
            if wanted or not is_def
        ]

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    def prepare_rename(ls: PolicyServer, params: lsp.PrepareRenameParams) -> lsp.Range:
        a, found = _renamable(ls, params.text_document.uri, params.position)
        return a.lines.range(found.line, found.col, found.line, found.end)

    @server.feature(lsp.TEXT_DOCUMENT_RENAME)
    def rename(ls: PolicyServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit:
        uri = params.text_document.uri
        a, found = _renamable(ls, uri, params.position)
        pattern = _NEW_QUOTED_NAME if found.kind in _QUOTED_KINDS else _NEW_NAME
        if not pattern.fullmatch(params.new_name):
            raise JsonRpcInvalidParams(f"`{params.new_name}` is not a valid {found.kind} name")
        if params.new_name in _declared_anywhere(ls, uri, a, found.kind):
            raise JsonRpcInvalidParams(f"a {found.kind} `{params.new_name}` already exists")
        changes: dict[str, list[lsp.TextEdit]] = {}
        for loc, _ in ls.everywhere(uri, a, found.kind, found.name):
            changes.setdefault(loc.uri, []).append(
                lsp.TextEdit(range=loc.range, new_text=params.new_name)
            )
        return lsp.WorkspaceEdit(changes=changes)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    async def formatting(
        ls: PolicyServer, params: lsp.DocumentFormattingParams
    ) -> list[lsp.TextEdit] | None:
        a = ls.analysis(params.text_document.uri)
        return actions.formatting(a, await ls.formatted(a.text))

    @server.feature(lsp.TEXT_DOCUMENT_RANGE_FORMATTING)
    async def range_formatting(
        ls: PolicyServer, params: lsp.DocumentRangeFormattingParams
    ) -> list[lsp.TextEdit] | None:
        a = ls.analysis(params.text_document.uri)
        return actions.formatting(a, await ls.formatted(a.text), params.range)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.Source]
        ),
    )
    def code_action(ls: PolicyServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        return actions.code_actions(ls.analysis(uri), uri, list(params.context.diagnostics))

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(
        ls: PolicyServer, params: lsp.DocumentSymbolParams
    ) -> list[lsp.DocumentSymbol]:
        return features.document_symbols(ls.analysis(params.text_document.uri))

    return server


def _declared_anywhere(ls: PolicyServer, uri: str, a: Analysis, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _, b in ls.group(uri, a):
        out.update(b.declared(kind))
    return out


__all__ = ["DEBOUNCE_SECONDS", "PolicyServer", "build_server"]
