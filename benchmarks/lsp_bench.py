"""`policy lsp`'s speed, measured as an editor sees it: a real client over stdio.

For a generated policy of 300 and of 5,000 lines (tests/support/bigpolicy.py: params, two
modes, rules that read them) the benchmark starts `policy lsp`, opens the policy, then
times, from the client's side:

- diagnostics after a change: a one-character edit (a typo in the last rule, then its fix)
  until the server publishes that version's diagnostics (debounce included);
- each request: completion after `params.`, hover, definition, references, rename, code
  actions, the outline (document symbols), and formatting (whole document and a range);
  formatting cold (the text was never formatted) and warm (after a pause in typing, when
  the server has formatted ahead).

Each number is the median of ``--rounds`` rounds, wall time in milliseconds.

    .venv/bin/python benchmarks/lsp_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.bigpolicy import big_policy  # noqa: E402
from support.lsp_session import (  # noqa: E402
    change,
    initialize_params,
    make_client,
    open_text,
    position_of,
)

Job = Callable[[], Awaitable[Any]]


async def _timed(job: Job) -> float:
    started = time.perf_counter()
    await job()
    return (time.perf_counter() - started) * 1000


async def bench(lines: int, rounds: int) -> dict[str, float]:
    client = make_client()
    await client.start_io(sys.executable, "-m", "policy_engine.cli", "lsp")
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        text = big_policy(lines)
        path.write_text(text)
        await client.initialize_session(initialize_params(Path(tmp)))
        started = time.perf_counter()
        await open_text(client, path, text)
        out["open: first diagnostics"] = [(time.perf_counter() - started) * 1000]
        ident = lsp.TextDocumentIdentifier(uri=path.as_uri())
        last = text.count("params.cap_") - 1
        use = position_of(text, "params.cap_", nth=last, shift=len("params.c"))
        typo = text[::-1].replace("_pac.smarap", "_pca.smarap", 1)[::-1]
        version = 1
        fmt = lsp.FormattingOptions(tab_size=2, insert_spaces=True)
        requests: dict[str, Job] = {
            "completion after `params.`": lambda: client.text_document_completion_async(
                lsp.CompletionParams(text_document=ident, position=use)
            ),
            "hover": lambda: client.text_document_hover_async(
                lsp.HoverParams(text_document=ident, position=use)
            ),
            "definition": lambda: client.text_document_definition_async(
                lsp.DefinitionParams(text_document=ident, position=use)
            ),
            "references": lambda: client.text_document_references_async(
                lsp.ReferenceParams(
                    text_document=ident,
                    position=use,
                    context=lsp.ReferenceContext(include_declaration=True),
                )
            ),
            "rename": lambda: client.text_document_rename_async(
                lsp.RenameParams(text_document=ident, position=use, new_name="renamed")
            ),
            "code actions": lambda: client.text_document_code_action_async(
                lsp.CodeActionParams(
                    text_document=ident,
                    range=lsp.Range(start=use, end=use),
                    context=lsp.CodeActionContext(diagnostics=[]),
                )
            ),
            "document symbols": lambda: client.text_document_document_symbol_async(
                lsp.DocumentSymbolParams(text_document=ident)
            ),
            "range formatting": lambda: client.text_document_range_formatting_async(
                lsp.DocumentRangeFormattingParams(
                    text_document=ident, range=lsp.Range(start=use, end=use), options=fmt
                )
            ),
        }
        formatting: Job = lambda: client.text_document_formatting_async(  # noqa: E731
            lsp.DocumentFormattingParams(text_document=ident, options=fmt)
        )
        for _ in range(rounds):
            for edited in (typo, text):
                version += 1
                started = time.perf_counter()
                await change(client, path, edited, version)
                out.setdefault("diagnostics after a change", []).append(
                    (time.perf_counter() - started) * 1000
                )
            # a fresh text (a comment added) so that the first formatting is cold
            version += 1
            text = text + f"# round {version}\n"
            await change(client, path, text, version)
            out.setdefault("formatting, cold", []).append(await _timed(formatting))
            for name, job in requests.items():
                out.setdefault(name, []).append(await _timed(job))
            await asyncio.sleep(1.0)  # a pause in typing: the server formats ahead
            out.setdefault("formatting, after a pause", []).append(await _timed(formatting))
        await client.shutdown_session()
    await client.stop()
    return {name: statistics.median(times) for name, times in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = (300, 5000)
    results = {n: asyncio.run(bench(n, args.rounds)) for n in sizes}
    print("| feature | " + " | ".join(f"{n} lines (ms)" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name in results[sizes[0]]:
        print(f"| {name} | " + " | ".join(f"{results[n][name]:.0f}" for n in sizes) + " |")


if __name__ == "__main__":
    main()
