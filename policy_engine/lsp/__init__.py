"""``policy lsp``: a language server for policy files and their decision tests.

Everything it says comes from the code the command line runs: diagnostics from the
checker and linter of ``policy-check`` (analysis/check.py), formatting from the
formatter of ``policy fmt``, names and types from the policy's symbol table
(document/names.py) and the function table (lang/functions.py). This package only
maps those answers onto LSP 3.17 (pygls): positions, ranges, edits.

    text.py      positions: 1-based spans -> 0-based LSP ranges (UTF-16 columns)
    index.py     one buffer analysed: document, spec, scope, names and where they occur
    features.py  completion, hover, symbols, code actions (pure functions of an analysis)
    server.py    the pygls server: documents, debounced diagnostics, the handlers
"""
