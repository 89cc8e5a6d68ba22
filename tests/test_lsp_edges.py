"""`policy lsp` (issue 21) at its edges, over stdio with a real client: decision test files,
the integrity block and "bump version" (PT420 against the committed version in git), a
5,000-line policy on which every feature completes, a client that sends nonsense, and a
closed buffer whose diagnostics are cleared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
import yaml
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from policy_engine.analysis.check import check_bytes
from policy_engine.document.build import integrity_block
from policy_engine.document.formatter import format_policy

from support.bigpolicy import big_policy
from support.lsp_session import (
    GUARD_SECONDS,
    SERVER,
    apply,
    bundled_policies,
    change,
    close,
    diagnostics,
    doc,
    initialize_params,
    mark,
    open_text,
    position_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding the bundled policies, committed."""
    return bundled_policies(tmp_path_factory.mktemp("repo"), commit=True)


@pytest_lsp.fixture(config=SERVER, scope="module")  # type: ignore[untyped-decorator]
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await lsp_client.initialize_session(initialize_params(workspace))
    yield
    await lsp_client.shutdown_session()


async def test_a_decision_test_file_gets_what_policy_test_says_on_loading_it(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "strategy_limits_test.yaml"
    text = path.read_text("utf-8")
    assert await open_text(client, path, text) == []
    twice = text.replace("- id: scalper-second-trade", "- id: scalper-first-trade", 1)
    found = await change(client, path, twice, 2)
    assert [x.code for x in found] == ["PT111"]
    assert "test ids used twice: scalper-first-trade" in found[0].message
    missing = "policy: nowhere.yaml\n" + text
    found = await change(client, path, missing, 3)
    assert [(x.code, x.range.start.line) for x in found] == [("PT001", 0)]
    assert "nowhere.yaml" in found[0].message
    wrong_key = text.replace("cases:", "casez:", 1)
    found = await change(client, path, wrong_key, 4)
    assert {x.code for x in found} == {"PT111"}
    assert found[0].range.start == position_of(wrong_key, "casez:")
    assert await change(client, path, text, 5) == []
    close(client, path)


async def test_an_open_test_file_follows_the_policy_being_edited(
    client: LanguageClient, workspace: Path
) -> None:
    tests = workspace / "strategy_limits_test.yaml"
    policy = workspace / "strategy_limits.yaml"
    good = policy.read_text("utf-8")
    assert await open_text(client, tests) == []
    assert await open_text(client, policy, good) == []
    seen = mark(client)
    broken = good.replace("strategy.", "stratgy.", 1)
    assert [x.code for x in await change(client, policy, broken, 2)] == ["PT301"]
    (found,) = await diagnostics(client, tests.as_uri(), 1, seen)
    assert found.code == "PT301" and found.message.startswith("the policy does not load:")
    seen = mark(client)
    assert await change(client, policy, good, 3) == []
    assert await diagnostics(client, tests.as_uri(), 1, seen) == []
    close(client, policy)
    close(client, tests)


async def _actions(
    client: LanguageClient, path: Path, context: list[lsp.Diagnostic]
) -> list[lsp.CodeAction]:
    answer = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=doc(path),
            range=lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
            ),
            context=lsp.CodeActionContext(diagnostics=context),
        )
    )
    return [a for a in answer or [] if isinstance(a, lsp.CodeAction)]


def _edits(action: lsp.CodeAction, path: Path) -> list[lsp.TextEdit]:
    assert action.edit is not None and action.edit.changes is not None
    return list(action.edit.changes[path.as_uri()])


async def test_the_integrity_block_is_inserted_and_kept_up_to_date(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "unsealed.yaml"  # not committed: no PT420 against git's version
    text = (workspace / "strategy_limits.yaml").read_text("utf-8")
    path.write_text(text)
    await open_text(client, path, text)
    (insert,) = [a for a in await _actions(client, path, []) if "integrity" in a.title]
    assert insert.title == "Insert integrity block"
    sealed = apply(text, _edits(insert, path))
    # At the top, right after the header, where a truncation cannot remove it.
    assert "\nversion: 2\nintegrity:\n  rules: " in sealed
    assert sealed.replace(integrity_block(yaml.safe_load(text)), "", 1) == text
    assert await change(client, path, sealed, 2) == []
    assert not [a for a in await _actions(client, path, []) if "integrity" in a.title]
    edited = sealed.replace("max_trades: 2", "max_trades: 3", 1)
    assert edited != sealed
    found = await change(client, path, edited, 3)
    assert "PT113" in {x.code for x in found}
    (update,) = [a for a in await _actions(client, path, found) if "integrity" in a.title]
    assert update.title == "Update integrity block"
    resealed = apply(edited, _edits(update, path))
    assert await change(client, path, resealed, 4) == []
    assert [x.code for x in check_bytes(resealed.encode(), "x.yaml").diagnostics] == []
    close(client, path)


async def test_a_changed_policy_whose_version_did_not_go_up_gets_pt420_and_a_bump(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    text = path.read_text("utf-8")
    assert await open_text(client, path, text) == []
    changed = text.replace("symbol_cap: 1_500", "symbol_cap: 1_600", 1)
    found = await change(client, path, changed, 2)
    assert [x.code for x in found] == ["PT420"]
    assert found[0].range.start == position_of(changed, "version: 1", shift=len("version: "))
    (bump,) = [a for a in await _actions(client, path, found) if a.title == "Bump version"]
    bumped = apply(changed, _edits(bump, path))
    assert "\nversion: 2\n" in bumped
    assert await change(client, path, bumped, 3) == []
    close(client, path)


async def test_every_feature_completes_on_a_5000_line_policy(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "big.yaml"
    text = big_policy(5000)
    assert text.count("\n") >= 4990
    path.write_text(text)
    expected = check_bytes(text.encode(), str(path)).diagnostics
    found = await open_text(client, path, text)
    assert [x.code for x in found] == [x.code for x in expected]
    last = text.rindex("params.cap_")
    use = position_of(text, "params.cap_", nth=text.count("params.cap_") - 1, shift=len("params.c"))
    assert text[last:].startswith("params.cap_")
    answer = await client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=doc(path), position=position_of(text, "limit: params.", shift=14)
        )
    )
    assert isinstance(answer, lsp.CompletionList) and len(answer.items) >= 490
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc(path), position=use)
    )
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    assert hover.contents.value.startswith("`params.cap_")
    defs = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc(path), position=use)
    )
    assert isinstance(defs, list) and len(defs) == 1 and defs[0].range.start.line > 5
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=doc(path),
            position=use,
            context=lsp.ReferenceContext(include_declaration=True),
        )
    )
    assert refs is not None and len(refs) == 3  # the declaration, the limit, the message
    renamed = await client.text_document_rename_async(
        lsp.RenameParams(text_document=doc(path), position=use, new_name="last_cap")
    )
    assert renamed is not None and renamed.changes is not None
    assert len(renamed.changes[path.as_uri()]) == 3
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            text_document=doc(path), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    assert edits is not None and apply(text, edits) == format_policy(text)
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc(path))
    )
    assert symbols is not None and len(symbols) == 3
    actions = await _actions(client, path, [])
    assert [a.title for a in actions] == ["Insert integrity block"]
    close(client, path)


async def test_nonsense_gets_an_error_and_the_server_keeps_serving(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "strategy_limits.yaml"
    text = path.read_text("utf-8")
    await open_text(client, path, text)
    with pytest.raises(JsonRpcException):  # a method no server has
        await asyncio.wait_for(
            client.protocol.send_request_async("policy/nonsense", {"x": 1}),  # type: ignore[no-untyped-call]
            GUARD_SECONDS,
        )
    # bytes no typed client would send: a body that is not JSON, a hover of the wrong shape,
    # a notification of the wrong shape
    for body in (
        b"{not json",
        b'{"jsonrpc": "2.0", "id": "raw-1", "method": "textDocument/hover", "params": {"textDocument": 7}}',
        b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"nonsense": true}}',
    ):
        _send_raw(client, body)
    with pytest.raises(JsonRpcException):  # a buffer that was never opened
        await client.text_document_hover_async(
            lsp.HoverParams(
                text_document=doc(workspace / "never.yaml"),
                position=lsp.Position(line=0, character=0),
            )
        )
    with pytest.raises(JsonRpcException):  # a position far past the end
        await client.text_document_rename_async(
            lsp.RenameParams(
                text_document=doc(path),
                position=lsp.Position(line=10_000, character=3),
                new_name="x",
            )
        )
    hover = await client.text_document_hover_async(
        lsp.HoverParams(
            text_document=doc(path), position=position_of(text, "strategy.max_trades", shift=10)
        )
    )
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    assert hover.contents.value == "`strategy.max_trades`: `number`"
    close(client, path)


async def test_closing_a_buffer_clears_its_diagnostics(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "typo.yaml"
    text = (
        (workspace / "strategy_limits.yaml").read_text("utf-8").replace("strategy.", "stratgy.", 1)
    )
    path.write_text(text)
    assert [x.code for x in await open_text(client, path, text)] == ["PT301"]
    seen = mark(client)
    close(client, path)
    assert await diagnostics(client, path.as_uri(), None, seen) == []


def _send_raw(client: LanguageClient, body: bytes) -> None:
    """Write a message to the server as it is, past the typed client."""
    writer = client.protocol.writer
    assert writer is not None
    writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


EURO_POLICY = """api_version: policy-engine/v1
name: euro
version: 1
description: limits in euros
params:
  cap: 10
rules:
  - id: r
    category: C
    require: intent.risk < params.cap
    code: rejected_r
    message: "€€ over {params.cpa}"
"""


@pytest_lsp.fixture(config=SERVER, scope="module")  # type: ignore[untyped-decorator]
async def utf8_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    params = initialize_params(workspace)
    params.capabilities = lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(
            position_encodings=[lsp.PositionEncodingKind.Utf8, lsp.PositionEncodingKind.Utf16]
        )
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def test_columns_are_utf16_units_by_default(client: LanguageClient, workspace: Path) -> None:
    await _euro_column(client, workspace / "euro-16.yaml", units=1)  # `€`: one UTF-16 unit


async def test_columns_are_utf8_bytes_when_the_client_asks(
    utf8_client: LanguageClient, workspace: Path
) -> None:
    await _euro_column(utf8_client, workspace / "euro-8.yaml", units=3)  # `€`: three bytes


async def _euro_column(speaker: LanguageClient, path: Path, units: int) -> None:
    path.write_text(EURO_POLICY)
    (found,) = await open_text(speaker, path, EURO_POLICY)
    line = EURO_POLICY.splitlines()[11]
    wanted = line.index("params.cpa") + (units - 1) * 2  # two `€` before it
    assert found.code == "PT306"
    assert (found.range.start.line, found.range.start.character) == (11, wanted)
    assert found.range.end.character == wanted + len("params.cpa")
    close(speaker, path)
