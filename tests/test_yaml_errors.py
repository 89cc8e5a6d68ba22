"""No raw PyYAML text reaches the user: every YAML problem is said in plain words, with
a help line where the fix is known, at the place to fix (issue 12).

The table pins the translation of the slips a risk owner makes (the first row is the
message a user quoted in the issue: `expected <block end>, but found <block mapping
start>`); the property test mutates the bundled policies at random and holds every PT101
message to the house style, whatever PyYAML says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine import PolicyError
from policy_engine.diagnostics import Diagnostic
from policy_engine.document.yaml_source import parse_document

ROOT = Path(__file__).resolve().parent.parent
HEAD = "api_version: policy-engine/v1\nname: t\nversion: 1\n"

# (policy text after HEAD, "line:col message (help)")
TABLE = [
    (
        "rules:\n  - id: a\n    require: x\n   when: y\n",
        "7:4 this line is indented differently from the keys around it (indent it exactly like the key it belongs with (spaces, not tabs))",
    ),
    (
        "rules:\n  - id: a\n    message: limit: reached\n    require: x\n",
        '6:19 a second `: ` on this line: YAML reads the value as another key (quote the value (`"..."`) when it contains `: `)',
    ),
    (
        "rules:\n  - id: a\n    require: x\n      when: y\n",
        "7:11 this key is indented more than the keys before it (line it up with the keys above it, or end the line above with `:` to nest it)",
    ),
    (
        "params:\n\tcap: 1\nrules: []\n",
        "5:1 a tab character: YAML indents with spaces only (replace the tab with spaces)",
    ),
    (
        "rules:\n  - id: a\n    require: [strategy.enabled\n  - id: b\n",
        "6:14 this `[` is never closed with `]` (close it with `]`, or quote the value if it is an expression)",
    ),
    (
        'rules:\n  - id: a\n    require: "strategy.enabled\n',
        "6:14 the quoted text opened on line 6 is never closed (end it with the same quote it starts with)",
    ),
    (
        "rules:\n  - id: a\n    limit: *2\n",
        '6:12 `*2` refers to an anchor `&2` that is not defined (quote the value if `*` is part of an expression (`limit: "2 * params.cap"`))',
    ),
    (
        "rules:\n  - id: a\n    require: [a, b] and c\n",
        "6:21 more text after a value that has ended (quote the whole value: a value that starts with `[`, `{` or a quote and goes on after it closes is read as YAML, not as text)",
    ),
    (
        "rules:\n  - id: a\n    require: x\n  id: b\n",
        "7:3 a key where a list item (`- `) was expected (start a new item with `- `, or indent the key like the item's other keys)",
    ),
    (
        "params:\n  a: 1\n- b\nrules: []\n",
        "6:1 a list item (`-`) where a key was expected (indent the list under the key it belongs to)",
    ),
    (
        "rules:\n  - id a\n    require: x\n",
        "6:12 this key is indented more than the keys before it (line it up with the keys above it, or end the line above with `:` to nest it)",
    ),
    (
        "rules:\n  - id: a\n    message: `x`\n    require: x\n",
        "6:14 a value cannot start with `` ` `` in YAML (quote the value)",
    ),
    (
        "params:\n  a: 1\n  b\nrules: []\n",
        "6:3 this line is neither `key: value` nor a list item (add `:` after the key, or indent the line under the key it continues)",
    ),
]


def _problems(text: str) -> list[Diagnostic]:
    try:
        parse_document(text.encode(), "t.yaml")
    except PolicyError as exc:
        return list(exc.diagnostics)
    return []


@pytest.mark.parametrize(("body", "expected"), TABLE, ids=[str(i) for i in range(len(TABLE))])
def test_a_yaml_slip_is_explained_where_it_is(body: str, expected: str) -> None:
    problems = _problems(HEAD + body)
    assert [f"{x.span.line}:{x.span.col} {x.text}" for x in problems] == [expected]
    assert problems[0].code == "PT101"


RAW = (
    "<block",
    "<scalar>",
    "<stream",
    "<document",
    "<flow",
    "but found",
    "while parsing",
    "while scanning",
    "'",
)
POLICY_TEXTS = [
    p.read_text("utf-8")
    for p in sorted((ROOT / "policies").glob("*.yaml"))
    if not p.name.endswith("_test.yaml")
]
SLIPS = [
    "\t",
    ":",
    " ",
    "-",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "*",
    "&",
    "!",
    "|",
    ">",
    "\n",
    "@",
    "`",
    "%",
    "#",
    "?",
    ",",
]


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(range(len(POLICY_TEXTS))),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(SLIPS), st.booleans()), min_size=1, max_size=3
    ),
)
def test_no_pyyaml_vocabulary_ever_reaches_the_user(
    which: int, edits: list[tuple[float, str, bool]]
) -> None:
    """Insert or overwrite characters anywhere in a bundled policy: each PT101 message is
    plain words (no PyYAML token names or phrasing) and points inside the file."""
    text = POLICY_TEXTS[which]
    for where, slip, replace in edits:
        i = int(where * (len(text) - 1))
        text = text[:i] + slip + text[i + (1 if replace else 0) :]
    lines = text.split("\n")
    for x in _problems(text):
        if x.code != "PT101":
            continue
        assert not any(raw in x.message for raw in RAW), x.message
        assert x.message and not x.message[0].isupper(), x.message
        assert 1 <= x.span.line <= len(lines) + 1, x
