"""YAML text -> :class:`Document`: plain data that remembers where every node came from.

PyYAML composes the node graph (with marks); this module constructs plain
data from it itself so that it can refuse duplicate keys, cap alias
expansion, and keep the line and column of every key and value. A
:class:`Document` is the :class:`~.sourcemap.SourceMap` the checker and the
linter report positions through.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import diagnostics as d
from ..diagnostics import Diagnostic, PolicyError, Span
from .budgets import prescan_problems, section_problems
from .model import YamlPath
from .yaml_errors import yaml_problem

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_NESTING = 64


@dataclass
class Document:
    """A parsed YAML file with the node behind every key and value."""

    path: str
    text: str
    content_hash: str
    data: Any = None
    values: dict[YamlPath, yaml.Node] = field(default_factory=dict)
    keys: dict[YamlPath, yaml.Node] = field(default_factory=dict)
    source: str = ""  # the file exactly as read (a BOM kept), so that it hashes to content_hash
    _line_starts: list[int] = field(default_factory=list)
    _offsets: dict[YamlPath, list[int]] = field(default_factory=dict)  # see expr_span

    def __post_init__(self) -> None:
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def position(self, index: int) -> Span:
        line = bisect.bisect_right(self._line_starts, index) - 1
        return Span(self.path, line + 1, index - self._line_starts[line] + 1)

    def span(self, path: YamlPath, *, key: bool = False) -> Span:
        """Where the value (or key) at ``path`` starts; falls back to the nearest parent."""
        probe = path
        while True:
            node = (self.keys if key else self.values).get(probe)
            if node is None and key:
                node = self.values.get(probe)
            if node is not None:
                return self.position(node.start_mark.index)
            if not probe:
                return Span(self.path, 1, 1)
            probe = probe[:-1]

    def expr_span(self, path: YamlPath, offset: int) -> Span:
        """Map ``offset`` inside the expression at ``path`` to the file's line and column."""
        node = self.values.get(path)
        if not isinstance(node, yaml.ScalarNode):
            return self.span(path)
        start = node.start_mark.index
        table = self._offsets.get(path)
        if table is None:  # once per scalar: 70,000 placeholders in one message are linear
            table = self._offsets[path] = _raw_offsets(node, self.text)
        complete = len(table) == len(node.value) + 1  # else the match gave up midway
        matched = len(node.value) if complete else len(table)
        if offset < matched:
            return self.position(start + table[offset])
        if complete:  # past the end: where the value ends
            return self.position(start + table[-1])
        return self.position(start)


def _raw_offsets(node: yaml.ScalarNode, text: str) -> list[int]:
    """Where each character of the scalar's value sits in its raw text (relative to the
    scalar's start), then where the value ends; only the characters matched (no end) when
    the match gives up.

    Greedy subsequence match of the value in the raw scalar text: it skips quotes, block
    indicators, indentation and folded line breaks alike. In a double-quoted scalar an
    escape (`\\t`, `\\"`, `\\u0022`) is the one character it stands for, and an escaped
    line break stands for none."""
    raw = text[node.start_mark.index : node.end_mark.index]
    escapes = node.style == '"'
    j = 1 if node.style in ('"', "'") else 0  # the opening quote is never content
    out: list[int] = []
    for ch in node.value:
        while j < len(raw):
            if escapes and raw[j] == "\\":
                if raw[j + 1 : j + 2] in ("\n", "\r"):
                    j += 2
                    continue
                break
            if raw[j] == ch:
                break
            j += 1
        if j >= len(raw):
            return out  # gave up: the characters matched so far, no end
        out.append(j)
        j += _escape_width(raw, j) if escapes and raw[j] == "\\" else 1
    out.append(min(j, len(raw)))
    return out


def _escape_width(raw: str, j: int) -> int:
    """Characters taken by the double-quoted YAML escape starting at ``raw[j]``."""
    return {"x": 4, "u": 6, "U": 10}.get(raw[j + 1 : j + 2], 2)


_POLICY_MARK = re.compile(rb"^api_version:[ \t]*[\"']?policy-engine/", re.MULTILINE)


def says_policy(raw: bytes) -> bool:
    """Whether the bytes say they are a policy (a top-level `api_version: policy-engine/...`):
    how a YAML file that is a policy is told from a CI workflow or any other YAML file."""
    return _POLICY_MARK.search(raw) is not None


def load_document(path: str | Path, display: str | None = None) -> Document:
    """Read and parse a policy file. Raises :class:`PolicyError` on any problem."""
    shown = display if display is not None else str(path)
    try:
        raw = read_policy_bytes(path)
    except PolicyError as exc:  # too big: said with the name the caller shows
        raise PolicyError(
            [d.diagnostic(x.code, x.message, Span(shown)) for x in exc.diagnostics]
        ) from None
    except OSError as exc:
        raise PolicyError(
            [d.diagnostic(d.PT001, f"cannot read file: {exc.strerror or exc}", Span(shown))]
        ) from None
    return parse_document(raw, shown)


def read_policy_bytes(path: str | Path) -> bytes:
    """A policy file's bytes: a regular file, read up to one byte past the size limit (so
    that `/dev/zero` or a FIFO named as a policy cannot hang or exhaust the reader; the
    parser then reports an oversized file as PT002)."""
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise PolicyError([d.diagnostic(d.PT002, _too_big(info.st_size), Span(str(path)))])
        return fh.read(MAX_FILE_BYTES + 1)


def _too_big(size: int) -> str:
    return f"file is {size} bytes (the limit is {MAX_FILE_BYTES})"


def parse_document(raw: bytes, path: str) -> Document:
    if len(raw) > MAX_FILE_BYTES:
        raise PolicyError([d.diagnostic(d.PT002, _too_big(len(raw)), Span(path))])
    if b"\x00" in raw:
        raise PolicyError([d.diagnostic(d.PT001, "file is binary, not YAML text", Span(path))])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        doc = Document(path, raw[: exc.start].decode("utf-8", "replace"), "")
        where = doc.position(len(doc.text))
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise PolicyError([d.diagnostic(d.PT001, message, where)]) from None
    doc = Document(
        path, text, "sha256:" + hashlib.sha256(raw).hexdigest(), source=raw.decode("utf-8")
    )
    oversized = prescan_problems(doc.text, doc.position)
    if oversized:
        raise PolicyError(oversized)
    root = _compose(doc)
    oversized = section_problems(root, doc.position)
    if oversized:
        raise PolicyError(oversized)
    doc.data = _Constructor(doc).build(root)
    return doc


def _flow_depth_problem(doc: Document) -> Diagnostic | None:
    """A cheap pre-scan: PyYAML's scanner is quadratic in flow nesting (`[[[[...`)."""
    if doc.text.count("[") + doc.text.count("{") <= MAX_NESTING:
        return None
    depth = 0
    for m in re.finditer(r"[\[{]|[\]}]|#[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'", doc.text):
        ch = m.group(0)[0]
        if ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return d.diagnostic(d.PT103, "YAML nests too deeply", doc.position(m.start()))
        elif ch in "]}":
            depth = max(0, depth - 1)
    return None


_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)


def _compose_all(text: str) -> list[yaml.Node]:
    """Compose with libyaml when present (~15x faster); on any problem re-run the pure
    loader so that error messages and positions are the same with or without libyaml."""
    if _FAST_LOADER is not None:
        try:
            nodes = list(yaml.compose_all(text, Loader=_FAST_LOADER))
        except yaml.YAMLError:
            pass
        else:
            for node in _iter_nodes(nodes):
                if isinstance(node, yaml.ScalarNode) and node.style == "":
                    node.style = None  # libyaml says "" for a plain scalar, PyYAML None
            return nodes
    return list(yaml.compose_all(text, Loader=yaml.SafeLoader))


def _iter_nodes(roots: list[yaml.Node]) -> list[yaml.Node]:
    seen: set[int] = set()
    out: list[yaml.Node] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:  # aliases share nodes
            continue
        seen.add(id(node))
        out.append(node)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return out


def _compose(doc: Document) -> yaml.Node:
    too_deep = _flow_depth_problem(doc)
    if too_deep is not None:
        raise PolicyError([too_deep])
    try:
        nodes = _compose_all(doc.text)
    except yaml.MarkedYAMLError as exc:
        raise PolicyError([_yaml_diagnostic(doc, exc)]) from None
    except yaml.YAMLError:
        message = "the file is not valid YAML"
        raise PolicyError([d.diagnostic(d.PT101, message, Span(doc.path))]) from None
    except RecursionError:
        message = "YAML nests too deeply"
        raise PolicyError([d.diagnostic(d.PT103, message, Span(doc.path))]) from None
    if not nodes:
        raise PolicyError([d.diagnostic(d.PT104, "file is empty", Span(doc.path))])
    if len(nodes) > 1:
        where = doc.position(nodes[1].start_mark.index)
        message = "file holds several YAML documents; a policy file holds one"
        raise PolicyError([d.diagnostic(d.PT104, message, where)])
    if not isinstance(nodes[0], yaml.MappingNode):
        where = doc.position(nodes[0].start_mark.index)
        raise PolicyError([d.diagnostic(d.PT104, "a policy file must be a YAML mapping", where)])
    return nodes[0]


class _Constructor:
    """Plain data from the node graph, with a budget against alias bombs."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0
        self.problems: list[Diagnostic] = []
        self.scalars = yaml.SafeLoader("")

    def build(self, root: yaml.Node) -> Any:
        value = self._node(root, (), 0)
        if self.problems:
            raise PolicyError(self.problems)
        return value

    def _node(self, node: yaml.Node, path: YamlPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_NESTING:
            what = f"more than {MAX_NODES} nodes" if depth <= MAX_NESTING else "too deep nesting"
            message = f"document expands to {what} (alias bomb?)"
            raise PolicyError([d.diagnostic(d.PT103, message, self.doc.position(0))])
        self.doc.values.setdefault(path, node)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node)
                if key is None:
                    continue
                if key in out:
                    where = self.doc.position(key_node.start_mark.index)
                    self.problems.append(d.diagnostic(d.PT102, f"duplicate key `{key}`", where))
                    continue
                self.doc.keys.setdefault((*path, key), key_node)
                out[key] = self._node(value_node, (*path, key), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._node(v, (*path, i), depth + 1) for i, v in enumerate(node.value)]
        if path in _TEXT_PATHS and isinstance(node, yaml.ScalarNode):
            return str(node.value)  # a time of day: its text, whatever YAML 1.1 makes of it
        # An expression's text is read as the expression language, not as a YAML type.
        return self._scalar(node, key=_is_expression(path))

    def _key(self, node: yaml.Node) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node, key=True)
            if isinstance(value, str | int | float | bool) or value is None:
                return str(node.value)
        where = self.doc.position(node.start_mark.index)
        self.problems.append(d.diagnostic(d.PT105, "mapping keys must be plain scalars", where))
        return None

    def _scalar(self, node: yaml.Node, key: bool = False) -> Any:
        """A scalar's value; ``key`` (a mapping key, or expression text) skips the YAML 1.1
        checks, since its raw text is what is used."""
        if node.tag == _TIMESTAMP and not self.doc.text.startswith("!", node.start_mark.index):
            # YAML 1.2 has no timestamp type: a plain `2026-03-01T00:00:00Z` is text (as
            # `enforce_from` reads it); an explicit `!!timestamp` tag is refused below.
            return str(node.value)
        if node.tag not in _SAFE_TAGS:
            where = self.doc.position(node.start_mark.index)
            self.problems.append(d.diagnostic(d.PT105, f"unsupported YAML tag `{node.tag}`", where))
            return None
        problem = None if key else _yaml11_problem(node)
        if problem is not None:
            # Refused before it is constructed: a 1 MB base-60 integer took 29 s to build.
            where = self.doc.position(node.start_mark.index)
            self.problems.append(d.diagnostic(problem[0], problem[1], where))
            return None
        try:
            return self.scalars.construct_object(node, deep=False)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_yaml_diagnostic(self.doc, exc))
            return None


# YAML 1.2's core schema, which is what a risk owner means; PyYAML reads YAML 1.1, where
# `on` is true, `010` is 8 and `1:30` is 90. A plain scalar that the two read differently
# is refused with a fix, never guessed.
_TRUE_FALSE = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
MAX_INT_DIGITS = 15  # beyond 1e15 a number is no risk limit, and big integers cost time


_EXPRESSION_KEYS = frozenset({"require", "limit", "allow", "when", "message"})


# Scalars that are always text whatever YAML 1.1 makes of them: `17:00` is a time of day,
# not the base-60 integer 1020.
_TEXT_PATHS = frozenset({("trading_day", "rollover")})


def _is_expression(path: YamlPath) -> bool:
    """Whether the scalar at ``path`` is expression text (its YAML type does not matter)."""
    if not path:
        return False
    if path[0] == "envelope":
        return True
    return len(path) == 3 and (
        (path[0] == "rules" and path[2] in _EXPRESSION_KEYS)
        or (path[0] in ("modes", "latches") and path[2] == "when")
    )


def _yaml11_problem(node: yaml.Node) -> tuple[str, str] | None:
    """(code, message) when a plain scalar means something else in YAML 1.1 and 1.2."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None:
        return None  # quoted: a string in both
    text, tag = str(node.value), node.tag
    if tag == "tag:yaml.org,2002:bool" and text not in _TRUE_FALSE:
        return d.PT106, (
            f"`{text}` is a boolean in YAML 1.1 but text in YAML 1.2: write "
            f"`{'true' if text.lower() in ('yes', 'y', 'on') else 'false'}`, or quote it for the text"
        )
    if tag == "tag:yaml.org,2002:int":
        if ":" in text:
            return (
                d.PT106,
                f"`{text}` is a base-60 number in YAML 1.1 but text in YAML 1.2: quote it, or write the number",
            )
        if not _DECIMAL_INT.fullmatch(text):
            return (
                d.PT106,
                f"`{text}` is not a decimal integer (YAML 1.1 reads octal, hex and binary): write it in decimal",
            )
        if len(text.lstrip("+-").replace("_", "")) > MAX_INT_DIGITS:
            return (
                d.PT116,
                f"`{text[:20]}...` has more than {MAX_INT_DIGITS} digits (numbers are at most 1e15)",
            )
    if tag == "tag:yaml.org,2002:float" and ":" in text:
        return (
            d.PT106,
            f"`{text}` is a base-60 number in YAML 1.1 but text in YAML 1.2: quote it, or write the number",
        )
    return None


def _yaml_diagnostic(doc: Document, exc: yaml.MarkedYAMLError) -> Diagnostic:
    """PT101 in plain words (PyYAML's own text never reaches the user)."""
    problem = yaml_problem(exc, doc.text)
    where = doc.position(problem.where) if problem.where is not None else Span(doc.path)
    return d.diagnostic(d.PT101, problem.message, where, problem.help)


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SAFE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
