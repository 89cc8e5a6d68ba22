"""`policy lsp` (issue 21), driven over stdio by a real LSP client (pytest-lsp).

One server serves the module, on a copy of the bundled policies: every feature on every
bundled policy, a typo appearing and disappearing as the text changes, a file that is not
YAML, decision test files, and a client that sends nonsense. What the server says is
compared with what the command line says: `policy-check`'s diagnostics, `policy fmt`'s
output byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from policy_engine import load_policy_text
from policy_engine.analysis.check import check_file
from policy_engine.document.formatter import format_policy
from policy_engine.document.yaml_source import parse_document
from policy_engine.testing.runner import run_file

from support.lsp_session import (
    SERVER,
    apply,
    bundled_policies,
    change,
    close,
    doc,
    initialize_params,
    open_text,
    position_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted(
    p.name for p in (ROOT / "policies").glob("*.yaml") if not p.name.endswith("_test.yaml")
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_policies(tmp_path_factory.mktemp("policies"))


@pytest_lsp.fixture(config=SERVER, scope="module")  # type: ignore[untyped-decorator]
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await lsp_client.initialize_session(initialize_params(workspace))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.parametrize("name", BUNDLED)
async def test_a_bundled_policy_gets_policy_checks_findings(
    client: LanguageClient, workspace: Path, name: str
) -> None:
    path = workspace / name
    found = await open_text(client, path)
    expected = check_file(str(path)).diagnostics
    assert [(x.code, x.range.start.line + 1, x.range.start.character + 1) for x in found] == [
        (x.code, x.span.line, x.span.col) for x in expected
    ]
    close(client, path)


async def test_a_typo_appears_with_its_fix_and_disappears(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    good = path.read_text("utf-8")
    assert await open_text(client, path, good) == []
    typo = good.replace("limit: params.symbol_cap", "limit: params.symbol_cpa", 1)
    found = await change(client, path, typo, 2)
    assert [x.code for x in found] == ["PT301"]
    (x,) = found
    assert x.range == lsp.Range(
        start=position_of(typo, "params.symbol_cpa"),
        end=position_of(typo, "params.symbol_cpa", shift=len("params.symbol_cpa")),
    )
    assert x.severity == lsp.DiagnosticSeverity.Error
    assert "unknown name `params.symbol_cpa`" in x.message
    assert "help: did you mean `params.symbol_cap`?" in x.message
    assert x.code_description is not None and x.code_description.href.endswith("codes.md#pt301")
    fixes = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=doc(path),
            range=x.range,
            context=lsp.CodeActionContext(diagnostics=[x]),
        )
    )
    fix = next(f for f in fixes or [] if isinstance(f, lsp.CodeAction) and f.is_preferred)
    assert fix.title == "Replace with `params.symbol_cap`"
    assert fix.edit is not None and fix.edit.changes is not None
    fixed = apply(typo, fix.edit.changes[path.as_uri()])
    assert fixed == good
    assert await change(client, path, fixed, 3) == []
    close(client, path)


async def test_text_that_is_not_yaml_gets_pt101_and_no_formatting(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "broken.yaml"
    text = "api_version: policy-engine/v1\nparams: [1, 2\nrules:\n  - id: x\n"
    path.write_text(text)
    found = await open_text(client, path, text)
    assert [x.code for x in found] == ["PT101"]
    assert found[0].range.start.line >= 1
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc(path), options=_options())
    )
    assert edits is None
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc(path))
    )
    assert symbols == []
    close(client, path)


@pytest.mark.parametrize("name", BUNDLED)
async def test_formatting_is_policy_fmt_byte_for_byte(
    client: LanguageClient, workspace: Path, name: str
) -> None:
    path = workspace / name
    # redundant parentheses around the first plain `require`, and a value spaced out
    messy = re.sub(
        r"(\n    require: )([^\"'\n]+)\n", r"\1( \2 )\n", path.read_text("utf-8"), count=1
    ).replace("category: ", "category:   ", 1)
    await open_text(client, path, messy)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc(path), options=_options())
    )
    assert edits is not None
    assert apply(messy, edits) == format_policy(messy)
    assert format_policy(messy) != messy
    close(client, path)


async def test_range_formatting_touches_only_the_range(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    good = format_policy(path.read_text("utf-8"))
    messy = good.replace(
        "require: not mode.flatten_only", "require: (not mode.flatten_only)"
    ).replace(
        "require: portfolio.active_trades < params.max_positions",
        "require: (portfolio.active_trades < params.max_positions)",
    )
    await open_text(client, path, messy)
    first = position_of(messy, "(not mode.flatten_only)")
    edits = await client.text_document_range_formatting_async(
        lsp.DocumentRangeFormattingParams(
            text_document=doc(path),
            range=lsp.Range(start=first, end=first),
            options=_options(),
        )
    )
    assert edits is not None
    result = apply(messy, edits)
    assert "require: not mode.flatten_only\n" in result
    assert "require: (portfolio.active_trades < params.max_positions)" in result
    close(client, path)


async def _complete(
    client: LanguageClient, path: Path, text: str, where: lsp.Position
) -> list[str]:
    answer = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc(path), position=where)
    )
    assert isinstance(answer, lsp.CompletionList)
    return [i.label for i in answer.items]


async def test_completion_offers_fields_names_functions_and_keys(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    text = path.read_text("utf-8")
    await open_text(client, path, text)
    after = "limit: params."
    assert set(await _complete(client, path, text, position_of(text, after, shift=len(after)))) == {
        "heat_cap",
        "symbol_cap",
        "cohort_cap",
        "max_positions",
    }
    after = "require: not mode."
    fields = await _complete(client, path, text, position_of(text, after, shift=len(after)))
    assert {"flatten_only", "risk_multiplier", "name"} <= set(fields)
    after = "require: strategy."
    fields = await _complete(client, path, text, position_of(text, after, shift=len(after)))
    assert {"enabled", "max_trades", "active_trades", "heat"} <= set(fields)
    after = "require: "
    names = await _complete(client, path, text, position_of(text, after, shift=len(after)))
    assert {"intent", "portfolio", "params.heat_cap", "min", "clamp", '"defensive"'} <= set(names)
    # YAML keys: at the top level, and inside a rule
    edited = text.replace("reservation_ttl_sec: 300", "reservation_ttl_sec: 300\nwin", 1)
    await change(client, path, edited, 2)
    keys = await _complete(client, path, edited, position_of(edited, "\nwin", shift=4))
    assert {"windows", "latches", "integrity", "rules"} <= set(keys)
    edited = text.replace("    on_exceed: clip", "    on_", 1)
    await change(client, path, edited, 3)
    keys = await _complete(client, path, edited, position_of(edited, "    on_", shift=7))
    assert {"on_exceed", "enforcement", "message", "when"} <= set(keys)
    close(client, path)


async def _hover(client: LanguageClient, path: Path, where: lsp.Position) -> str:
    answer = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc(path), position=where)
    )
    assert answer is not None and isinstance(answer.contents, lsp.MarkupContent)
    return answer.contents.value


async def test_hover_says_types_values_signatures_and_rules(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    text = path.read_text("utf-8")
    await open_text(client, path, text)
    at = position_of(text, "limit: params.symbol_cap", shift=len("limit: params.sym"))
    assert await _hover(client, path, at) == "`params.symbol_cap`: `number = 1500`"
    at = position_of(
        text, "params.heat_cap * portfolio.equity", shift=len("params.heat_cap * port")
    )
    assert await _hover(client, path, at) == "`portfolio.equity`: `number`"
    at = position_of(text, "id: symbol-cap", shift=6)
    meaning = await _hover(client, path, at)
    assert meaning.startswith("rule `symbol-cap` (SYMBOL): clips the risk to")
    assert "rejected_symbol_cap" in meaning
    at = position_of(text, "  defensive: {", shift=3)
    assert await _hover(client, path, at) == (
        "mode `defensive`: risk x 0.5, when `portfolio.drawdown >= 5%`"
    )
    at = position_of(text, "  L1: [", shift=2)
    assert await _hover(client, path, at) == "cohort `L1`: BTC-USD, ETH-USD, SOL-USD"
    with_min = text.replace(
        "limit: params.symbol_cap * mode", "limit: min(params.symbol_cap, 10) * mode", 1
    )
    await change(client, path, with_min, 2)
    assert (await _hover(client, path, position_of(with_min, "min(", shift=1))).startswith(
        "`min(x, ...)`"
    )
    close(client, path)


async def test_definition_references_and_rename_span_the_policy_and_its_tests(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    text = path.read_text("utf-8")
    await open_text(client, path, text)
    use = position_of(text, "limit: params.symbol_cap", shift=len("limit: params."))
    found = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc(path), position=use)
    )
    assert isinstance(found, list) and len(found) == 1
    assert found[0].range.start == position_of(text, "symbol_cap: 1_500")
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=doc(path),
            position=use,
            context=lsp.ReferenceContext(include_declaration=True),
        )
    )
    assert refs is not None
    by_file = {Path(r.uri.removeprefix("file://")).name for r in refs}
    assert by_file == {"portfolio.yaml", "portfolio_modes_test.yaml"}
    in_policy = [r for r in refs if r.uri == path.as_uri()]
    assert len(in_policy) == text.count("params.symbol_cap") + 1
    edit = await client.text_document_rename_async(
        lsp.RenameParams(text_document=doc(path), position=use, new_name="per_symbol_cap")
    )
    assert edit is not None and edit.changes is not None
    renamed = apply(text, edit.changes[path.as_uri()])
    assert "params.symbol_cap" not in renamed and "  per_symbol_cap: 1_500" in renamed
    assert renamed.count("params.per_symbol_cap") == text.count("params.symbol_cap")
    assert await change(client, path, renamed, 2) == []
    modes_test = workspace / "portfolio_modes_test.yaml"
    test_text = apply(modes_test.read_text("utf-8"), edit.changes[modes_test.as_uri()])
    assert "params.per_symbol_cap: 1500" in test_text
    with pytest.raises(JsonRpcException):
        await client.text_document_rename_async(
            lsp.RenameParams(text_document=doc(path), position=use, new_name="heat_cap")
        )
    close(client, path)


async def test_modes_are_found_where_they_are_compared(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "portfolio.yaml"
    text = path.read_text("utf-8").replace(
        "require: not mode.flatten_only",
        'require: not mode.flatten_only or mode.name == "defensive"',
    )
    await open_text(client, path, text)
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=doc(path),
            position=position_of(text, '"defensive"', shift=2),
            context=lsp.ReferenceContext(include_declaration=False),
        )
    )
    assert refs is not None and [r.range.start for r in refs if r.uri == path.as_uri()] == [
        position_of(text, '"defensive"', shift=1)
    ]
    close(client, path)


def _options() -> lsp.FormattingOptions:
    return lsp.FormattingOptions(tab_size=2, insert_spaces=True)


async def test_a_yaml_file_that_is_not_a_policy_gets_no_diagnostics(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "ci.yaml"
    text = "on: [push]\njobs:\n  test: {runs-on: ubuntu-latest}\n"
    assert await open_text(client, path, text) == []
    as_policy = "api_version: policy-engine/v1\n" + text
    assert {x.code for x in await change(client, path, as_policy, 2)} >= {"PT111"}
    close(client, path)


RENAMED_SECTIONS = (
    "params",
    "strategies",
    "cohorts",
    "modes",
    "windows",
    "latches",
    "scopes",
    "inputs",
)


@pytest.mark.parametrize("name", BUNDLED)
async def test_renaming_any_declared_name_keeps_the_policy_and_its_tests_passing(
    client: LanguageClient, workspace: Path, name: str, tmp_path: Path
) -> None:
    """Rename each declared name at its declaration; the renamed policy checks as before and
    its decision tests, renamed by the same edit, still pass under `policy test`. (A name
    quoted inside an expected message, `reasons_contain: ["strategy BREAKOUT is disabled"]`,
    is prose that a rename leaves alone: those tests are not rerun for that name.)"""
    path = workspace / name
    text = path.read_text("utf-8")
    declared = parse_document(text.encode(), str(path))
    before = [x.code for x in check_file(str(path)).diagnostics]
    await open_text(client, path, text)
    renamed = 0
    for section in RENAMED_SECTIONS:
        for key in declared.data.get(section) or {}:
            mark = declared.keys[(section, key)].start_mark
            where = lsp.Position(line=mark.line, character=mark.column)
            params = lsp.RenameParams(text_document=doc(path), position=where, new_name=f"{key}_x")
            if (section, key) == ("modes", "normal"):
                with pytest.raises(JsonRpcException):
                    await client.text_document_rename_async(params)
                continue
            edit = await client.text_document_rename_async(params)
            assert edit is not None and edit.changes is not None
            out = tmp_path / f"{section}-{key}"
            out.mkdir()
            bundled_policies(out)
            touched = [out / name]
            for uri, edits in edit.changes.items():
                target = out / Path(uri.removeprefix("file://")).name
                target.write_text(apply(target.read_text("utf-8"), edits))
                touched.append(target)
            assert [x.code for x in check_file(str(out / name)).diagnostics] == before
            tests = {p for p in touched if p.name.endswith("_test.yaml")}
            tests |= {out / (Path(name).stem + "_test.yaml")}
            for test_file in sorted(tests):
                if _quoted_in_prose(workspace / test_file.name, key):
                    continue
                report = run_file(str(test_file))
                assert report.error is None, (section, key, report.error)
                assert all(r.passed for r in report.results), (section, key, test_file.name)
            renamed += 1
    assert renamed >= 2
    close(client, path)


def _quoted_in_prose(test_file: Path, name: str) -> bool:
    prose = ("reasons_contain", "log_line", "warning_messages")
    return any(
        name in line and any(p in line for p in prose)
        for line in test_file.read_text("utf-8").splitlines()
    )


@pytest.mark.parametrize("name", BUNDLED)
async def test_hover_outline_completion_and_actions_on_every_bundled_policy(
    client: LanguageClient, workspace: Path, name: str
) -> None:
    path = workspace / name
    text = path.read_text("utf-8")
    spec = load_policy_text(text, str(path)).checked.spec
    await open_text(client, path, text)
    for param, value in spec.params.items():  # the value of every param, where it is read
        if f"params.{param}" not in text:
            continue
        at = position_of(text, f"params.{param}", shift=len("params."))
        shown = value if not isinstance(value, float) or not value.is_integer() else int(value)
        assert await _hover(client, path, at) == f"`params.{param}`: `number = {shown}`"
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc(path))
    )
    assert symbols is not None
    outline = {
        s.name: [c.name for c in s.children or []]
        for s in symbols
        if isinstance(s, lsp.DocumentSymbol)
    }
    assert outline.get("params", []) == list(spec.params)
    assert outline.get("modes", []) == list(
        parse_document(text.encode(), name).data.get("modes", {})
    )
    assert outline["rules"] == [r.id for r in spec.rules]
    for rule in spec.rules:  # every rule's id hovers with its meaning
        at = position_of(text, f"id: {rule.id}\n", shift=len("id: "))
        assert (await _hover(client, path, at)).startswith(f"rule `{rule.id}` ({rule.category})")
    after = "require: "
    names = await _complete(client, path, text, position_of(text, after, shift=len(after)))
    assert {f"params.{p}" for p in spec.params} <= set(names)
    assert {f'"{m}"' for m in spec.modes} <= set(names)
    titles = [a.title for a in await _code_actions(client, path)]
    assert titles == ["Insert integrity block"]
    close(client, path)


async def _code_actions(client: LanguageClient, path: Path) -> list[lsp.CodeAction]:
    answer = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=doc(path),
            range=lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
            ),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    return [a for a in answer or [] if isinstance(a, lsp.CodeAction)]
