"""Run a test file: every case against the policy, every scenario through a controller.

A case's decision is the policy's own (``Policy.evaluate``, the compiled fast
path); coverage, when asked for, comes from the reference interpreter run beside
it with a :class:`~policy_engine.engine.coverage.Coverage` observer (the fast
path is never slowed). A scenario runs its events through a real
:class:`~policy_engine.control.controller.PortfolioController` whose policy
reports each evaluation to the same observer. ``with`` replaces constants of
the policy for one test, as OPA's ``with`` does for data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from ..control.controller import PortfolioController
from ..control.events import EventError
from ..diagnostics import PolicyError
from ..engine.contracts import PortfolioSnapshot
from ..engine.coverage import Coverage
from ..engine.interpreter import run_chain
from ..engine.outcome import Outcome
from ..engine.policy import Policy, load_policy, load_policy_text
from ..lang.lexical import fmt
from .suite import Case, Expect, Scenario, Suite, SuiteError, merge


@dataclass
class TestResult:
    """One case or scenario: passed, or what differed and the deciding rule's numbers."""

    file: str
    id: str
    kind: str  # "case" or "scenario"
    line: int
    failures: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class FileReport:
    """Everything one test file gave: its results, the policy's coverage, or why it could
    not run at all."""

    path: str
    results: list[TestResult] = field(default_factory=list)
    coverage: Coverage | None = None
    error: str | None = None


class _Observed(Policy):
    """A policy that also runs the reference chain with an observer on every decision.

    The decision is still the compiled chain's; observing changes nothing but the coverage.
    """

    def __init__(self, policy: Policy, seen: Coverage | None) -> None:
        super().__init__(policy.document, policy.source, kind=policy.kind)
        self.seen = seen

    def decide(self, intent: Any, snapshot: Any) -> Outcome:
        if self.seen is not None:
            run_chain(self.checked, self.data, intent, snapshot, self.seen.view(self.checked))
        return super().decide(intent, snapshot)

    def for_request(self, kind: str) -> Policy:
        """The request kind's chain, observed too (its rules count where they are written)."""
        chain = super().for_request(kind)
        if chain is self or isinstance(chain, _Observed):
            return chain
        observed = _Observed(chain, self.seen)
        self._requests[kind] = observed
        return observed


def run_file(path: str, *, coverage: bool = False) -> FileReport:
    """Run every test of the file at ``path``."""
    report = FileReport(path)
    try:
        suite = Suite.load(path)
        base = load_tested_policy(suite)
    except SuiteError as exc:
        report.error = str(exc)
        return report
    seen = Coverage(base.document) if coverage else None  # every rule, of every request kind
    report.coverage = seen
    variants: dict[str, Policy] = {"{}": base}

    def policy_for(with_: dict[str, Any]) -> Policy:
        key = json.dumps(with_, sort_keys=True)
        if key not in variants:
            variants[key] = with_constants(base, with_)
        return variants[key]

    data = suite.data
    plan: list[tuple[str, str, list[Any], Any]] = [
        ("cases", "case", data.cases, _run_case),
        ("scenarios", "scenario", data.scenarios, _run_scenario),
    ]
    for section, kind, tests, run in plan:
        for i, test in enumerate(tests):
            result = TestResult(path, test.id, kind, suite.line(section, i))
            try:
                run(policy_for(test.with_), test, suite, seen, result)
            except SuiteError as exc:
                result.failures.append(str(exc))
            report.results.append(result)
    return report


def load_tested_policy(suite: Suite) -> Policy:
    """The policy a suite tests: its `policy_text`, or its policy file."""
    try:
        if suite.data.policy_text is not None:
            return load_policy_text(suite.data.policy_text, f"{suite.path}:policy_text")
        target = suite.policy_path
        assert target is not None
        return load_policy(target)
    except PolicyError as exc:
        raise SuiteError(
            f"the policy does not load: {'; '.join(x.format() for x in exc.diagnostics)}"
        ) from None


def with_constants(base: Policy, with_: dict[str, Any]) -> Policy:
    """The policy with some constants replaced (its rules, and their order, unchanged)."""
    data = yaml.safe_load(base.source or "")
    try:
        return load_policy_text(
            yaml.safe_dump(merge(data, with_), sort_keys=False), f"{base.path} (with)"
        )
    except PolicyError as exc:
        raise SuiteError(
            f"`with` makes the policy invalid: {'; '.join(x.text for x in exc.diagnostics)}"
        ) from None


def _model(cls: Any, data: dict[str, Any], what: str) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SuiteError(f"invalid {what}: {problems}") from None


def _run_case(
    policy: Policy, case: Case, suite: Suite, seen: Coverage | None, result: TestResult
) -> None:
    defaults = suite.data.defaults
    intent = _model(policy.intent_model, merge(defaults.intent, case.intent), "intent")
    state = _model(PortfolioSnapshot, merge(defaults.state, case.state), "state")
    if case.group is not None:  # a member of an order group (`group.count`, ...)
        intent = intent.in_group(case.group.count, case.group.risk, case.group.notional)
    if case.request != "intent":  # the chain of a cancel or modify request (`applies_to`)
        policy = policy.for_request(case.request)
    verdict = policy.evaluate(intent, state)
    facts = verdict.decision().model_dump(mode="json")
    facts["log_line"] = verdict.log_line()
    facts["reasons"] = verdict.reasons  # "all rules passed" too, which a decision leaves out
    if seen is not None:
        run_chain(policy.checked, policy.data, intent, state, seen.view(policy.checked))
    _compare(case.expect, facts, result)


def _run_scenario(
    policy: Policy, scenario: Scenario, suite: Suite, seen: Coverage | None, result: TestResult
) -> None:
    defaults = suite.data.defaults
    equity = scenario.equity if scenario.equity is not None else defaults.state.get("equity", 0.0)
    timestamp = defaults.intent.get("timestamp")
    decisions: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []  # a request's record: expected as `KIND:intent_id`
    observed = _Observed(policy, seen)
    with PortfolioController(observed, equity=float(equity), records=records.append) as ctl:
        for n, raw in enumerate(scenario.events, 1):
            event = merge(defaults.intent, raw) if raw.get("type") == "intent" else dict(raw)
            if raw.get("type") == "group":  # each member over `defaults.intent`
                event["intents"] = [merge(defaults.intent, m) for m in raw.get("intents") or []]
            if timestamp is not None and "timestamp" not in event:
                event["timestamp"] = timestamp
            try:
                record = ctl.apply(event)
            except (EventError, ValueError) as exc:
                raise SuiteError(f"event {n} ({event.get('type')}): {exc}") from None
            if record is not None:
                decisions[str(record["intent_id"])] = record
            elif records and str(records[-1].get("kind", "")).startswith("request_"):
                last = records[-1]
                decisions[f"{str(last['kind'])[8:]}:{last['intent_id']}"] = last
            else:  # an order group: each member's decision, by its intent id
                for rec in records:
                    if rec.get("kind") == "decision" and rec.get("seq") is not None:
                        decisions[str(rec["intent_id"])] = rec
            records.clear()
    for intent_id, expect in scenario.expect.items():
        found = decisions.get(intent_id)
        if found is None:
            result.failures.append(f"`{intent_id}`: no decision for this intent in the events")
            continue
        _compare(expect, found, result, prefix=f"`{intent_id}` ")


def _close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-9)
    return bool(actual == expected)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, float) and not isinstance(value, bool):
        return fmt(value)
    return json.dumps(value, ensure_ascii=False)


def _compare(expect: Expect, facts: dict[str, Any], result: TestResult, prefix: str = "") -> None:
    """Each written expectation against the decision; a failure shows the deciding rule."""
    failures: list[str] = []

    def differ(name: str, expected: Any, actual: Any) -> None:
        failures.append(f"{prefix}{name}: expected {_shown(expected)}, got {_shown(actual)}")

    given = expect.model_fields_set
    for name in ("decision_code", "approved", "approved_risk_abs", "rule_id"):
        if name in given and not _close(facts.get(name), getattr(expect, name)):
            differ(name, getattr(expect, name), facts.get(name))
    for name in ("mode", "mode_source", "headroom", "log_line"):
        if name in given and not _close(facts.get(name), getattr(expect, name)):
            differ(name, getattr(expect, name), facts.get(name))
    context = facts.get("context") or {}
    for key, value in expect.context.items():
        if key not in context or not _close(context[key], value):
            differ(f"context[{key}]", value, context.get(key, "(absent)"))
    clips = [(c["rule_id"], c["from_risk"], c["to_risk"]) for c in facts.get("clips") or []]
    if expect.clips is not None and (
        len(clips) != len(expect.clips)
        or not all(
            a[0] == b[0] and _close(a[1], b[1]) and _close(a[2], b[2])
            for a, b in zip(clips, expect.clips, strict=False)
        )
    ):
        differ("clips", [list(c) for c in expect.clips], [list(c) for c in clips])
    warnings = facts.get("warnings") or []
    if expect.warnings is not None and [w["rule_id"] for w in warnings] != expect.warnings:
        differ("warnings", expect.warnings, [w["rule_id"] for w in warnings])
    for rule_id, fragment in expect.warning_messages.items():
        messages = [w["message"] for w in warnings if w["rule_id"] == rule_id]
        if not messages or fragment not in messages[0]:
            differ(f"warning of {rule_id}", f"… {fragment} …", messages[0] if messages else None)
    reasons = "\n".join(facts.get("reasons") or [])
    for fragment in expect.reasons_contain:
        if fragment not in reasons:
            differ("reasons", f"… {fragment} …", facts.get("reasons"))
    if failures:
        result.failures.extend(failures)
        rule = facts.get("rule_id")
        head = f"{prefix}decided by `{rule}`" if rule else f"{prefix}decided by no rule"
        result.explanation.extend([head, *(f"  {r}" for r in facts.get("reasons") or [])])


__all__ = ["FileReport", "TestResult", "load_tested_policy", "run_file", "with_constants"]
