"""PyYAML's problems in plain words: what is wrong at the marked place, and how to fix it.

PyYAML reports the parser's view (``expected <block end>, but found <block
mapping start>``); a risk owner editing a policy needs the writer's view
(``this line is indented differently from the keys around it``). Every
``yaml.MarkedYAMLError`` becomes a message, an optional help line and the
character index to point at. Nothing of PyYAML's token vocabulary
(``<block end>``, ``<scalar>``, ...) reaches the user: an unforeseen message
is rephrased with those tokens in words (``tests/test_yaml_errors.py`` holds
it to that).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import yaml

_TOKENS = {
    "<block end>": "the end of the block",
    "<block mapping start>": "a key indented differently",
    "<block sequence start>": "a list",
    "<flow mapping start>": "`{`",
    "<flow sequence start>": "`[`",
    "<scalar>": "more text",
    "<stream end>": "the end of the file",
    "<stream start>": "the start of the file",
    "<document start>": "`---`",
    "<document end>": "`...`",
    "<alias>": "an alias",
    "<anchor>": "an anchor",
    "<tag>": "a tag",
}
_QUOTE_HELP = "quote the whole value: a value that starts with `[`, `{` or a quote and goes on after it closes is read as YAML, not as text"


class YamlProblem(NamedTuple):
    """A YAML error for people: the message, how to fix it, and where (a character index)."""

    message: str
    help: str | None
    where: int | None


def yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    """Translate ``exc`` (raised while composing ``text``) into plain words."""
    problem = (exc.problem or exc.context or "").rstrip(".")
    mark = exc.problem_mark or exc.context_mark
    index = mark.index if mark is not None else None
    opened = exc.context_mark.line + 1 if exc.context_mark is not None else None
    found = _found(problem)
    if problem == "mapping values are not allowed here":
        return _colon_here(text, index)
    if problem.startswith("expected <block end>"):
        return _block_end(found, index)
    if problem.startswith(("expected ',' or ']'", "expected ',' or '}'")):
        close = "]" if "']'" in problem else "}"
        opener = "[" if close == "]" else "{"
        where = exc.context_mark.index if exc.context_mark is not None else index
        return YamlProblem(
            f"this `{opener}` is never closed with `{close}`",
            f"close it with `{close}`, or quote the value if it is an expression",
            where,
        )
    if problem == "could not find expected ':'":
        where = exc.context_mark.index if exc.context_mark is not None else index
        return YamlProblem(
            "this line is neither `key: value` nor a list item",
            "add `:` after the key, or indent the line under the key it continues",
            where,
        )
    if "cannot start any token" in problem:
        return _bad_start(found, index)
    if problem == "found unexpected end of stream" and "quoted scalar" in (exc.context or ""):
        return YamlProblem(
            f"the quoted text opened on line {opened} is never closed",
            "end it with the same quote it starts with",
            exc.context_mark.index if exc.context_mark is not None else index,
        )
    if problem.startswith("found unknown escape character"):
        return YamlProblem(
            f"unknown escape `\\{found}` in a double-quoted string",
            "write `\\\\` for a backslash, or use single quotes, where `\\` is just a character",
            index,
        )
    if problem.startswith("found undefined alias"):
        return YamlProblem(
            f"`*{found}` refers to an anchor `&{found}` that is not defined",
            'quote the value if `*` is part of an expression (`limit: "2 * params.cap"`)',
            index,
        )
    if "an anchor" in (exc.context or "") or "an alias" in (exc.context or ""):
        sign = "&" if "anchor" in (exc.context or "") else "*"
        return YamlProblem(
            f"`{sign}` must be followed by a name here (YAML reads it as an {'anchor' if sign == '&' else 'alias'})",
            f"quote the value if `{sign}` is part of an expression",
            exc.context_mark.index if exc.context_mark is not None else index,
        )
    if problem.startswith("expected '<document start>'"):
        return YamlProblem(
            "text after the end of the document",
            "indent it under the key it belongs to, or remove it",
            index,
        )
    if problem.startswith("expected the node content"):
        return YamlProblem(f"a value is missing before `{found}`", None, index)
    if problem.startswith("expected chomping or indentation indicators"):
        return YamlProblem(
            f"`{found}` cannot follow `|` or `>`", "start the text on the next line", index
        )
    return YamlProblem(_in_words(problem) or "the file is not valid YAML", None, index)


def _found(problem: str) -> str:
    """What PyYAML says it found: the last quoted token of the problem."""
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", problem)
    value = quoted[-1] if quoted else ""
    return {"\\t": "tab", "\\n": "line break"}.get(value, value)


def _colon_here(text: str, index: int | None) -> YamlProblem:
    line_start = text.rfind("\n", 0, index or 0) + 1
    before = text[line_start : index or 0]
    if re.search(r":(\s|$)", before):  # `message: limit: reached`: the value holds `: `
        return YamlProblem(
            "a second `: ` on this line: YAML reads the value as another key",
            'quote the value (`"..."`) when it contains `: `',
            index,
        )
    return YamlProblem(
        "this key is indented more than the keys before it",
        "line it up with the keys above it, or end the line above with `:` to nest it",
        index,
    )


def _block_end(found: str, index: int | None) -> YamlProblem:
    if found == "<block mapping start>":
        return YamlProblem(
            "this line is indented differently from the keys around it",
            "indent it exactly like the key it belongs with (spaces, not tabs)",
            index,
        )
    if found == "-":
        return YamlProblem(
            "a list item (`-`) where a key was expected",
            "indent the list under the key it belongs to",
            index,
        )
    if found == "?":
        return YamlProblem(
            "a key where a list item (`- `) was expected",
            "start a new item with `- `, or indent the key like the item's other keys",
            index,
        )
    if found == "<scalar>":
        return YamlProblem("more text after a value that has ended", _QUOTE_HELP, index)
    if found in ("]", "}"):
        opener = "[" if found == "]" else "{"
        return YamlProblem(f"`{found}` closes nothing", f"remove it, or add the `{opener}`", index)
    return YamlProblem(f"unexpected {_TOKENS.get(found, f'`{found}`')} here", None, index)


def _bad_start(found: str, index: int | None) -> YamlProblem:
    if found == "tab":
        return YamlProblem(
            "a tab character: YAML indents with spaces only", "replace the tab with spaces", index
        )
    shown = f"`` {found} ``" if "`" in found else f"`{found}`"
    return YamlProblem(f"a value cannot start with {shown} in YAML", "quote the value", index)


def _in_words(problem: str) -> str:
    """Any other problem, with PyYAML's token names in words and quotes as backticks."""
    for token, words in _TOKENS.items():
        problem = problem.replace(f"'{token}'", words).replace(token, words)
    problem = re.sub(r"<[a-z ]+>", "a YAML token", problem)
    problem = re.sub(
        r"^expected (.+), but (?:found|got) (.+)$", r"\2 where \1 was expected", problem
    )
    # PyYAML shows a quote it found as "'" or '"': name it, the quotes would read as quoting
    problem = problem.replace('"\'"', "a single quote").replace("'\"'", "a double quote")
    problem = re.sub(r'"([^"]*)"', r"`\1`", problem)
    return re.sub(r"'([^']*)'", r"`\1`", problem)


__all__ = ["YamlProblem", "yaml_problem"]
