"""Rule and branch coverage of a policy: what its tests made every rule and branch do.

:class:`Coverage` is an :class:`~.interpreter.Observer` of the reference chain
(``run_chain(..., seen=coverage)``): for every rule, how often it approved,
clipped, rejected, passed, was skipped by its ``when``, warned (shadow) or
failed; for every ``and``/``or`` whether it came out both true and false, and
for every ``a if c else b`` whether both branches were taken. The compiled
fast path never sees it. A rule *fired* when it decided at least once (an
allow approved, a gate rejected, a cap clipped or rejected, a shadow rule
warned); rule coverage is the share of rules that fired. An evaluation error
(the rule failed closed) is counted and shown, but proves nothing about the
rule's limit, so it does not count as firing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..document.checker import CheckedPolicy
from ..lang import syntax as s

FIRED = ("approved", "clipped", "rejected", "warned")
OUTCOMES = ("approved", "clipped", "rejected", "warned", "error", "passed", "skipped", "missing")

BranchKey = tuple[int, str, int]  # rule index, part (`when` or the kind), offset in the text


@dataclass
class Branch:
    """One `and`/`or` (true and false seen?) or `if` (body and else taken?)."""

    rule: int
    part: str
    kind: str  # "and", "or", "if"
    text: str
    start: int
    taken: set[bool] = field(default_factory=set)

    @property
    def both(self) -> bool:
        return self.taken == {True, False}


class Coverage:
    """What a policy's rules and branches did over many evaluations (see the module doc)."""

    def __init__(self, checked: CheckedPolicy) -> None:
        self.checked = checked
        self.outcomes: list[Counter[str]] = [Counter() for _ in checked.rules]
        self.branches: dict[BranchKey, Branch] = {}
        for i, rule in enumerate(checked.rules):
            parts = [(rule.spec.kind, rule.expr), ("when", rule.when)]
            for part, root in parts:
                if root is None:
                    continue
                for node in s.walk(root):
                    kind = node.op if isinstance(node, s.BoolOp) else "if"
                    if isinstance(node, s.BoolOp | s.Cond):
                        key = (i, part, node.start)
                        self.branches[key] = Branch(i, part, kind, s.unparse(node), node.start)
        self._at: tuple[int, str] = (-1, "")

    # --- the observer -----------------------------------------------------------------
    def at(self, rule: int, part: str) -> None:
        self._at = (rule, part)

    def rule(self, index: int, outcome: str) -> None:
        self.outcomes[index][outcome] += 1

    def branch(self, node: s.Expr, taken: bool) -> None:
        found = self.branches.get((*self._at, node.start))
        if found is not None:
            found.taken.add(taken)

    def absorb(self, other: Coverage) -> None:
        """Add what ``other`` saw of the same policy (another test file of it)."""
        for mine, theirs in zip(self.outcomes, other.outcomes, strict=True):
            mine.update(theirs)
        for key, branch in other.branches.items():
            if key in self.branches:
                self.branches[key].taken |= branch.taken

    def view(self, checked: CheckedPolicy) -> ChainView:
        """The observer of one request kind's chain (``checked``: its rules, a part of this
        policy's, see `applies_to`): what it sees is counted at the rule as written."""
        return ChainView(self, tuple(r.spec.path[1] for r in checked.rules))

    # --- the report -------------------------------------------------------------------
    def fired(self, index: int) -> bool:
        return any(self.outcomes[index][o] for o in FIRED)

    @property
    def rules_fired(self) -> int:
        return sum(1 for i in range(len(self.outcomes)) if self.fired(i))

    @property
    def percent(self) -> float:
        """Rule coverage in percent (100 for a policy without rules)."""
        total = len(self.outcomes)
        return 100.0 if total == 0 else 100.0 * self.rules_fired / total

    @property
    def branches_both(self) -> int:
        return sum(1 for b in self.branches.values() if b.both)

    def status(self, index: int) -> str:
        """`fired`, `passed only`, `skipped only` (by its `when`), `missing only` (let pass by
        `when_missing: approve`), or `never ran`."""
        counts = self.outcomes[index]
        if self.fired(index):
            return "fired"
        if counts["passed"]:
            return "passed only"
        if counts["skipped"]:
            return "skipped only"
        if counts["missing"]:
            return "missing only"  # let pass by `when_missing: approve`
        return "never ran"

    def as_dict(self) -> dict[str, Any]:
        spec = self.checked.spec
        return {
            "policy": spec.path,
            "name": spec.name,
            "version": spec.version,
            "rules_fired": self.rules_fired,
            "rules": len(self.outcomes),
            "percent": round(self.percent, 2),
            "branches_both_ways": self.branches_both,
            "branches": len(self.branches),
            "by_rule": [
                {
                    "rule_id": rule.spec.id,
                    "status": self.status(i),
                    "outcomes": {o: self.outcomes[i][o] for o in OUTCOMES if self.outcomes[i][o]},
                }
                for i, rule in enumerate(self.checked.rules)
            ],
            "branches_one_way": [
                {
                    "rule_id": self.checked.rules[b.rule].spec.id,
                    "part": b.part,
                    "branch": b.text,
                    "seen": sorted(b.taken),
                }
                for b in self.branches.values()
                if not b.both
            ],
        }


class ChainView:
    """An observer of one chain that counts in a :class:`Coverage` of every rule written:
    rule ``i`` of the chain is rule ``where[i]`` of the document."""

    def __init__(self, coverage: Coverage, where: tuple[Any, ...]) -> None:
        self.coverage = coverage
        self.where = where

    def at(self, rule: int, part: str) -> None:
        self.coverage.at(self.where[rule], part)

    def rule(self, index: int, outcome: str) -> None:
        self.coverage.rule(self.where[index], outcome)

    def branch(self, node: s.Expr, taken: bool) -> None:
        self.coverage.branch(node, taken)


__all__ = [
    "FIRED",
    "OUTCOMES",
    "Branch",
    "ChainView",
    "Coverage",
]
