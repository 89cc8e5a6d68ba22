"""Budgets: what a policy may cost, checked before it is trusted.

A policy is data from a file, and a hostile or careless one must not make
loading, checking or evaluating it slow. Two kinds of budget, both refused with
PT116 at the exact place that exceeds them:

- sizes, checked on the raw document before the schema (so that a 16,000-rule
  or 30,000-param file is refused in milliseconds, not checked for seconds):
  rules, params, modes, inputs, the entries of strategies, symbols and cohorts, list
  lengths, the keys of any mapping (20,000 unknown keys in one rule would otherwise be
  20,000 schema errors, each built with its position);
- an evaluation cost, estimated on the checked expressions (as CEL estimates
  cost): one unit per AST node of every rule, `when`, mode tier and envelope
  expression, plus the length of any list a membership test or `min`/`max`/`len`
  walks, plus what the policy's declarations make every event walk (a scope: one
  more bucket per trade; a window: a count and an expiry per counted event; a
  latch: its `when`, evaluated after every event). A name that looks up a table costs one
  more unit (`position.*`: the open position the intent names; `balance.*`: a currency's
  balance and this portfolio's lock on it). Rules count in the chains they decide
  (`applies_to`): one evaluation runs one chain (an intent's, a cancel's, a modify's, or a
  growing modify's: the intent and modify rules), so the costliest chain is what is budgeted.
  The limit keeps the worst accepted policy near 50 us per evaluation on the generated chain
  (measured: benchmarks/README.md).

The numbers are documented in docs/policy-format.md ("Budgets").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from .. import diagnostics as d
from ..diagnostics import Diagnostic, Span
from ..lang import syntax as s
from .checker import CheckedPolicy
from .model import REQUEST_CHAINS
from .sourcemap import SourceMap

MAX_RULES = 1_000
MAX_PARAMS = 1_000
MAX_ENTRIES = 10_000  # strategies, symbols, cohorts: each
MAX_LIST_ITEMS = 10_000
MAX_KEYS = 10_000  # of any other mapping (the sections above have their own budgets)
MAX_PLACEHOLDERS = 100  # in one rule's message: each is an expression, rendered on a reject
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
MAX_MODES = 100  # a ladder of a hundred tiers is already no ladder
MAX_DECLARED = 100  # scopes (and windows, latches, inputs): each is kept on every event
MAX_COST = 6_000  # units; see the module docstring

_SECTIONS = ("strategies", "symbols", "cohorts")


_LIMITS = {
    "rules": MAX_RULES,
    "params": MAX_PARAMS,
    "modes": MAX_MODES,
    "scopes": MAX_DECLARED,
    "windows": MAX_DECLARED,
    "latches": MAX_DECLARED,
    "locks": MAX_DECLARED,
    "inputs": MAX_DECLARED,  # each one validated on every intent
    "currencies": MAX_DECLARED,  # each a name `balance.<CCY>.*` the checker resolves
    **dict.fromkeys(_SECTIONS, MAX_ENTRIES),
}


_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*(?:#.*)?$", re.MULTILINE)
_NEXT_TOP = re.compile(r"^[^\s#]", re.MULTILINE)
_FIRST_CHILD = re.compile(r"^([ \t]+)[^\s#]", re.MULTILINE)


def prescan_problems(text: str, position: Callable[[int], Span]) -> list[Diagnostic]:
    """Top-level block sections over budget, counted on the text before YAML composes it
    (composing a 20,000-entry section takes seconds): a section's entries are the lines at
    its first child's indentation. Flow-style sections are left to :func:`section_problems`."""
    out = []
    for m in _TOP_KEY.finditer(text):
        limit = _LIMITS.get(m.group(1))
        if limit is None:
            continue
        nxt = _NEXT_TOP.search(text, m.end())
        body = text[m.end() : nxt.start() if nxt else len(text)]
        first = _FIRST_CHILD.search(body)
        if first is None:
            continue
        indent = re.escape(first.group(1))
        count = len(re.findall(rf"^{indent}[^\s#]", body, re.MULTILINE))
        if count > limit:
            message = f"the policy has {count} {m.group(1)} (the budget is {limit})"
            out.append(d.diagnostic(d.PT116, message, position(m.start())))
    return out


def section_problems(root: yaml.Node, position: Callable[[int], Span]) -> list[Diagnostic]:
    """Top-level sections over budget, counted on the composed YAML nodes, before anything
    is built: a 16,000-rule file is refused in the time it takes to parse it."""
    out = []
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            limit = _LIMITS.get(str(key.value)) if isinstance(key, yaml.ScalarNode) else None
            if limit is not None and isinstance(value, yaml.MappingNode | yaml.SequenceNode):
                count = len(value.value)
                if count > limit:
                    message = f"the policy has {count} {key.value} (the budget is {limit})"
                    out.append(d.diagnostic(d.PT116, message, position(key.start_mark.index)))
    return out


def size_problems(data: Any, where: SourceMap) -> list[Diagnostic]:
    """Lists and mappings over budget anywhere in the built document (before the schema
    looks at it; the top-level sections were counted earlier)."""
    out = []
    for path, items in _lists(data, ()):
        if len(path) == 1 and path[0] in _LIMITS:
            continue
        if isinstance(items, list) and len(items) > MAX_LIST_ITEMS:
            message = f"a list of {len(items)} items (the budget is {MAX_LIST_ITEMS})"
            out.append(_over(where, path, message))
        elif isinstance(items, dict) and path and len(items) > MAX_KEYS:
            message = f"a mapping of {len(items)} keys (the budget is {MAX_KEYS})"
            out.append(_over(where, path, message))
    rules = data.get("rules") if isinstance(data, dict) else None
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        text = rule.get("message") if isinstance(rule, dict) else None
        if isinstance(text, str) and "{" in text:
            count = sum(1 for m in _PLACEHOLDER.finditer(text) if m.group(0) not in ("{{", "}}"))
            if count > MAX_PLACEHOLDERS:
                what = f"{count} placeholders in one message (the budget is {MAX_PLACEHOLDERS})"
                out.append(_over(where, ("rules", i, "message"), what))
    return out


def _lists(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], list[Any] | dict[Any, Any]]]:
    """Every list and mapping in ``value``, with its path."""
    stack = [(value, path)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, list):
            yield at, node
            stack.extend((v, (*at, i)) for i, v in enumerate(node) if isinstance(v, list | dict))
        elif isinstance(node, dict):
            yield at, node
            stack.extend((v, (*at, k)) for k, v in node.items() if isinstance(v, list | dict))


def _over(where: SourceMap, path: tuple[str | int, ...], what: str) -> Diagnostic:
    return d.diagnostic(d.PT116, f"the policy has {what}", where.span(path, key=True))


def evaluation_cost(checked: CheckedPolicy) -> tuple[int, list[tuple[str, int]]]:
    """The estimated cost of one evaluation (of the costliest chain), and the cost of each
    of its parts (rule id or place)."""
    params = checked.spec.params
    shared: list[tuple[str, int]] = []
    for name, node in checked.mode_whens.items():
        shared.append((f"modes.{name}.when", _cost(node, params)))
    rules = [
        (
            rule.spec.id,
            frozenset(rule.spec.applies_to),
            _cost(rule.expr, params) + (_cost(rule.when, params) if rule.when else 0),
        )
        for rule in checked.rules
    ]
    chains = [[(i, c) for i, kinds, c in rules if kinds & k] for k in REQUEST_CHAINS.values()]
    parts = [*shared, *max(chains, key=lambda chain: sum(c for _i, c in chain))]
    for key, node in checked.envelope.items():
        parts.append((f"envelope.{key}", _cost(node, params)))
    for name in checked.spec.scopes:  # one more bucket every trade moves through
        parts.append((f"scopes.{name}", 1))
    for name, w in checked.spec.windows.items():  # a count, and an expiry per counted event
        parts.append((f"windows.{name}", _WINDOW_COST.get(w.aggregate, 1 if w.daily else 2)))
    for name in checked.spec.locks:  # a threshold test per counted event, an end per key
        parts.append((f"locks.{name}", 2))
    for name, node in checked.latch_whens.items():  # evaluated after every event
        parts.append((f"latches.{name}.when", _cost(node, params)))
    return sum(c for _, c in parts), parts


# A name that looks a table up costs one unit more than its node: the open position the
# intent names (and whether it is open), a currency's balance (less this portfolio's lock).
_LOOKUP = frozenset({"position", "balance"})


# What a window costs per event: a daily count has no expiry (1), a rolling one has (2); a
# sum moves by the quantity too (3); a min or max keeps a monotonic deque (a push and, later,
# a pop per event, amortized: 4); a drawdown a two-stack queue of running totals whose
# front is rebuilt once per event, amortized (5). None walks the window.
_WINDOW_COST: dict[str | None, int] = {"sum": 3, "min": 4, "max": 4, "drawdown": 5}


def _cost(root: s.Expr, params: dict[str, Any]) -> int:
    total = 0
    for node in s.walk(root):
        total += 1
        walked: s.Expr | None = None
        if isinstance(node, s.Name) and node.path[0] in _LOOKUP:
            total += 1
        elif isinstance(node, s.Compare):
            operands = (node.first, *node.rest)
            for op, right in zip(node.ops, operands[1:], strict=False):
                if op in ("in", "not in"):
                    walked = right
        elif (
            isinstance(node, s.Call) and node.func in ("min", "max", "len") and len(node.args) == 1
        ):
            walked = node.args[0]
        if walked is not None:
            total += _length(walked, params)
    return total


def _length(node: s.Expr, params: dict[str, Any]) -> int:
    """How many items evaluating ``node`` may walk (a literal list, a param list or string)."""
    if isinstance(node, s.ListLit):
        return len(node.items)
    if isinstance(node, s.Name) and node.path[0] == "params":
        value: Any = params
        for part in node.path[1:]:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, list | str | dict):
            return len(value)
    return 0


def cost_problem(checked: CheckedPolicy, where: SourceMap) -> Diagnostic | None:
    """PT116 at the costliest rule when the whole policy is over the evaluation budget."""
    total, parts = evaluation_cost(checked)
    if total <= MAX_COST:
        return None
    worst, worst_cost = max(parts, key=lambda p: p[1])
    rule = next((r for r in checked.rules if r.spec.id == worst), None)
    span = where.span(rule.spec.path) if rule is not None else where.span(())
    message = (
        f"one evaluation of this policy is estimated at {total} cost units (the budget is "
        f"{MAX_COST}); the costliest part is `{worst}` ({worst_cost})"
    )
    return d.diagnostic(d.PT116, message, span)


__all__ = [
    "MAX_COST",
    "MAX_DECLARED",
    "MAX_ENTRIES",
    "MAX_KEYS",
    "MAX_LIST_ITEMS",
    "MAX_MODES",
    "MAX_PARAMS",
    "MAX_PLACEHOLDERS",
    "MAX_RULES",
    "cost_problem",
    "evaluation_cost",
    "prescan_problems",
    "section_problems",
    "size_problems",
]
