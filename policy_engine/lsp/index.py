"""One editor buffer analysed: its document, model, symbol table and named things.

An :class:`Analysis` is built for each version of a buffer and computes lazily: the
YAML document first (libyaml, fast), then, when a feature asks, the checked result
(``policy-check``'s own :func:`~policy_engine.analysis.check.check_source`), the policy
model and the occurrences of every declared name. When the buffer is broken the
symbol table of the last version that built is kept, so completion and hover still
know the policy's names while the risk owner is mid-edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml

from ..analysis.check import Result, check_source
from ..diagnostics import Diagnostic, PolicyError
from ..document.build import build_spec
from ..document.model import PolicySpec, YamlPath
from ..document.names import MODE_FIELDS, NAMESPACES, WINDOW_NAMESPACES, Scope
from ..document.yaml_source import Document, parse_document
from ..lang import syntax as s
from ..lang.errors import ExprSyntaxError
from ..lang.parser import parse_expression
from .text import Lines

# The sections whose entries are named things, and what an entry of each is called.
DECLARING = {
    "params": "param",
    "strategies": "strategy",
    "symbols": "symbol",
    "cohorts": "cohort",
    "modes": "mode",
    "windows": "window",
    "latches": "latch",
    "scopes": "scope",
    "inputs": "input",
}
# Names that expressions and test files spell as string values (`mode.name == "defensive"`).
QUOTED_KINDS = ("mode", "cohort", "strategy", "symbol")
RULE_EXPRESSION_KEYS = ("require", "limit", "allow", "when")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
# Values of a decision test file that name something of the policy: (last keys) -> kind.
_TEST_VALUES = {"mode": "mode", "mode_override": "mode", "strategy": "strategy", "symbol": "symbol"}


@dataclass(frozen=True, order=True)
class Occurrence:
    """Where a declared name is written: 0-based line and code-point columns."""

    line: int
    col: int
    end: int
    kind: str
    name: str
    definition: bool = False

    def covers(self, line: int, col: int) -> bool:
        return self.line == line and self.col <= col <= self.end


_CONTEXT_KINDS = {"params": "param", "latch": "latch", "intent": "input"}


def _context_names(key: Occurrence, dotted: str) -> Iterator[Occurrence]:
    """The names in a `context:` key of a decision test (``params.heat_cap``): a param, a
    latch, an input, or a window read per a namespace (``strategy.trades_1h``)."""
    parts = dotted.split(".")
    if len(parts) != 2:
        return
    root, name = parts
    kind = _CONTEXT_KINDS.get(root, "window")
    col = key.col + len(root) + 1
    yield Occurrence(key.line, col, col + len(name), kind, name)
    if root not in _CONTEXT_KINDS and root not in NAMESPACES:
        yield Occurrence(key.line, key.col, key.col + len(root), "scope", root)


def empty_scope() -> Scope:
    return Scope(
        strategy_cfg={}, symbol_cfg={}, cohort_cfg={}, mode_cfg=dict(MODE_FIELDS), params={}
    )


class Analysis:
    """One version of one buffer (a policy or a decision test file)."""

    def __init__(
        self,
        path: str,
        text: str,
        previous: Analysis | None = None,
        encoding: str = "utf-16",
    ) -> None:
        self.path = path
        self.text = text
        self.lines = Lines.of(text, encoding)
        self.is_test_file = path.endswith("_test.yaml")
        self._previous_scope = previous.scope if previous is not None else None
        self._previous_spec = previous.spec if previous is not None else None
        self.doc: Document | None = None
        self.load_problems: list[Diagnostic] = []
        try:
            self.doc = parse_document(text.encode("utf-8"), path)
        except PolicyError as exc:
            self.load_problems = list(exc.diagnostics)

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data if self.doc is not None and isinstance(self.doc.data, dict) else {}

    @cached_property
    def result(self) -> Result:
        """What ``policy-check`` finds in this buffer (policies only)."""
        if self.doc is None:
            return Result(self.path, self.load_problems)
        return check_source(self.doc)

    @cached_property
    def spec(self) -> PolicySpec | None:
        """The policy model of this version, else of the last version that had one."""
        if "result" in self.__dict__ and self.result.checked is not None:
            return self.result.checked.spec
        if self.doc is not None and not self.is_test_file:
            try:  # (an unvalidated document: `trading_day: null` has no `.get`)
                spec, problems = build_spec(self.doc)
            except (PolicyError, AttributeError, KeyError, TypeError, ValueError):
                pass
            else:
                if not problems:  # a model with problems is not this version's policy
                    return spec
        return self._previous_spec

    @cached_property
    def scope(self) -> Scope:
        if self.spec is not None:
            return Scope.of(self.spec)
        return self._previous_scope or empty_scope()

    # --- named things ---------------------------------------------------------------------
    @cached_property
    def names(self) -> dict[str, dict[str, None]]:
        """kind -> the names of that kind this buffer declares, in the order written."""
        out: dict[str, dict[str, None]] = {}
        for section, kind in DECLARING.items():
            entries = self.data.get(section)
            out[kind] = dict.fromkeys(map(str, entries)) if isinstance(entries, dict) else {}
        for _, members in self._cohort_members():
            out["symbol"].update(dict.fromkeys(map(str, members)))  # a member is a symbol
        return out

    def _cohort_members(self) -> Iterator[tuple[YamlPath, list[Any]]]:
        """(path of the list, members) of every cohort: `L1: [BTC-USD]` or `symbols: [...]`."""
        cohorts = self.data.get("cohorts")
        for name, cfg in cohorts.items() if isinstance(cohorts, dict) else ():
            if isinstance(cfg, list):
                yield ("cohorts", str(name)), cfg
            elif isinstance(cfg, dict) and isinstance(cfg.get("symbols"), list):
                yield ("cohorts", str(name), "symbols"), cfg["symbols"]

    def declared(self, kind: str) -> dict[str, None]:
        """The names of ``kind`` this buffer declares (an ordered set)."""
        return self.names.get(kind, {})

    @cached_property
    def occurrences(self) -> tuple[Occurrence, ...]:
        """Every place a declared name is written, definitions included, in file order."""
        if self.doc is None:
            return ()
        found = list(self._test_occurrences() if self.is_test_file else self._occurrences())
        return tuple(sorted(set(found)))

    def at(self, line: int, col: int) -> Occurrence | None:
        return next((o for o in self.occurrences if o.covers(line, col)), None)

    def of(self, kind: str, name: str) -> list[Occurrence]:
        return [o for o in self.occurrences if o.kind == kind and o.name == name]

    def _key(self, path: YamlPath, kind: str, definition: bool) -> Occurrence | None:
        assert self.doc is not None
        node = self.doc.keys.get(path)
        if not isinstance(node, yaml.ScalarNode) or node.start_mark.line != node.end_mark.line:
            return None
        m = node.start_mark
        return Occurrence(m.line, m.column, node.end_mark.column, kind, str(path[-1]), definition)

    def _value(self, path: YamlPath, kind: str) -> Occurrence | None:
        assert self.doc is not None
        node = self.doc.values.get(path)
        if not isinstance(node, yaml.ScalarNode):
            return None
        m = node.start_mark
        quoted = 1 if node.style in ('"', "'") else 0
        col = m.column + quoted
        return Occurrence(m.line, col, col + len(node.value), kind, str(node.value))

    def _occurrences(self) -> Iterator[Occurrence]:
        data = self.data
        for section, kind in DECLARING.items():
            entries = data.get(section)
            if isinstance(entries, dict):
                for name in entries:
                    found = self._key((section, str(name)), kind, True)
                    if found is not None:
                        yield found
        for path, members in self._cohort_members():
            for i in range(len(members)):
                found = self._value((*path, i), "symbol")
                if found is not None:
                    yield found
        scopes_raw = data.get("scopes")
        inputs = self.declared("input")
        for name, cfg in scopes_raw.items() if isinstance(scopes_raw, dict) else ():
            key = cfg.get("key") if isinstance(cfg, dict) else None
            if isinstance(key, str) and key.startswith("intent.") and key[7:] in inputs:
                found = self._value(("scopes", str(name), "key"), "input")
                if found is not None:  # `key: intent.venue` reads the input `venue`
                    col = found.col + len("intent.")
                    yield Occurrence(found.line, col, found.end, "input", key[7:])
        windows = data.get("windows")
        scopes = set(self.declared("scope"))
        if isinstance(windows, dict):
            for name, cfg in windows.items():
                if isinstance(cfg, dict) and cfg.get("per") in scopes:
                    found = self._value(("windows", str(name), "per"), "scope")
                    if found is not None:
                        yield found
        for path, base, text in self.expressions():
            try:
                tree = parse_expression(text)
            except ExprSyntaxError:
                continue
            for node in s.walk(tree):
                yield from self._expression_names(node, path, base, text)

    def expressions(self) -> Iterator[tuple[YamlPath, int, str]]:
        """(YAML path, offset in the scalar, text) of every expression, message
        placeholders included."""
        data = self.data
        rules = data.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            if not isinstance(rule, dict):
                continue
            for key in RULE_EXPRESSION_KEYS:
                if isinstance(rule.get(key), str):
                    yield ("rules", i, key), 0, rule[key]
            message = rule.get("message")
            if isinstance(message, str):
                for m in _PLACEHOLDER.finditer(message):
                    if m.group(1) is not None:
                        yield ("rules", i, "message"), m.start(1), m.group(1)
        for section in ("modes", "latches"):
            entries = data.get(section)
            for name, entry in entries.items() if isinstance(entries, dict) else ():
                if isinstance(entry, dict) and isinstance(entry.get("when"), str):
                    yield (section, str(name), "when"), 0, entry["when"]
        envelope = data.get("envelope")
        for key, value in envelope.items() if isinstance(envelope, dict) else ():
            if isinstance(value, str):
                yield ("envelope", str(key)), 0, value

    def _expression_names(
        self, node: s.Expr, path: YamlPath, base: int, text: str
    ) -> Iterator[Occurrence]:
        if isinstance(node, s.Str):
            kind = self._quoted_kind(node.value)
            if kind is not None and text[node.start : node.start + 1] in ("'", '"'):
                yield from self._span_at(path, base + node.start + 1, node.value, kind)
            return
        if not isinstance(node, s.Name):
            return
        p = node.path
        if text[node.start : node.start + len(node.dotted)] != node.dotted:
            return  # spaces around a dot: rare, and not worth guessing positions
        hit: tuple[int, str] | None = None
        if p[0] in self.declared("scope"):
            hit = (0, "scope")
        if len(p) >= 2:
            if p[0] == "params" and p[1] in self.declared("param"):
                hit = (1, "param")
            elif p[0] == "latch" and p[1] in self.declared("latch"):
                hit = (1, "latch")
            elif p[0] == "intent" and p[1] in self.declared("input"):
                hit = (1, "input")
            elif p[1] in self.declared("window") and (
                p[0] in WINDOW_NAMESPACES or p[0] in self.declared("scope")
            ):
                yield from self._span_at(path, base + node.start + len(p[0]) + 1, p[1], "window")
        if hit is not None:
            index, kind = hit
            offset = node.start + sum(len(part) + 1 for part in p[:index])
            yield from self._span_at(path, base + offset, p[index], kind)

    def _quoted_kind(self, value: str) -> str | None:
        return next((k for k in QUOTED_KINDS if value in self.declared(k)), None)

    def _span_at(self, path: YamlPath, offset: int, name: str, kind: str) -> Iterator[Occurrence]:
        assert self.doc is not None
        span = self.doc.expr_span(path, offset)
        line, col = span.line - 1, span.col - 1
        if self.lines.line(line)[col : col + len(name)] == name:
            yield Occurrence(line, col, col + len(name), kind, name)

    def _test_occurrences(self) -> Iterator[Occurrence]:
        """A decision test file names the policy's things as keys (`with: {params: {x: 1}}`,
        `state: {strategies: {SCALPER: ...}, windows: {trades_1h: 3}}`, an intent's input
        `venue:`, a `context:` key `params.x`) and as values (`strategy: SCALPER`,
        `symbol: BTC-USD`, `mode: defensive`)."""
        assert self.doc is not None
        for path in self.doc.keys:
            parent = str(path[-2]) if len(path) >= 2 else ""
            kind = DECLARING.get(parent) or ("input" if parent == "intent" else None)
            if kind is not None:
                found = self._key(path, kind, False)
                if found is not None:
                    yield found
            if parent == "context":  # `context: {params.heat_cap: 0.06, strategy.trades_1h: 3}`
                found = self._key(path, "", False)
                if found is not None:
                    yield from _context_names(found, str(path[-1]))
        for path in self.doc.values:
            kind = _TEST_VALUES.get(str(path[-1])) if path else None
            if kind is not None:
                found = self._value(path, kind)
                if found is not None:
                    yield found


__all__ = ["DECLARING", "Analysis", "Occurrence", "empty_scope"]
