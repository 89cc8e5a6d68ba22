"""The decision test file: ``<policy>_test.yaml`` next to ``<policy>.yaml``.

One YAML mapping::

    policy: portfolio.yaml          # optional: default is this file's name without `_test`
    defaults:                       # merged under every case's state and intent
      state: {equity: 100000}
      intent: {intent_id: t-1, strategy: SCALPER, symbol: BTC-USD, side: long,
               requested_risk_abs: 1000, timestamp: "2026-01-05T09:00:00Z"}
    cases:                          # state + intent -> expected decision
      - id: heat-cap-clips
        note: what the case proves
        with: {params: {heat_cap: 5%}}   # optional: constants replaced for this case only
        state: {active_risk: 4000}
        intent: {}
        expect: {decision_code: approved_clipped, approved_risk_abs: 1000, rule_id: portfolio-heat}
    scenarios:                      # an event stream through a real controller
      - id: third-trade-waits-for-a-close
        equity: 100000
        events: [{type: intent, intent_id: s1}, {type: fill, intent_id: s1, ...}, ...]
        expect: {s1: {decision_code: approved_full}, s3: {decision_code: rejected_strategy_limit}}

The reference is docs/testing.md. ``policy_text`` (an inline policy) may stand
in for ``policy``; it serves tests of the language itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import diagnostics as d
from ..analysis.check import check_bytes, check_file
from ..diagnostics import Diagnostic, PolicyEngineError, PolicyError
from ..document.model import YamlPath
from ..document.yaml_source import Document, load_document, parse_document

TEST_SUFFIX = "_test.yaml"
OVERRIDABLE = ("params", "strategies", "symbols", "cohorts", "modes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Expect(_Strict):
    """What a decision must be. Only what is written is checked; `decision_code` always."""

    decision_code: str
    approved: bool | None = None
    approved_risk_abs: float | None = None
    rule_id: str | None = None
    mode: str | None = None
    mode_source: str | None = None
    headroom: float | None = None
    context: dict[str, Any] = {}
    clips: list[tuple[str, float, float]] | None = None
    warnings: list[str] | None = None
    warning_messages: dict[str, str] = {}
    reasons_contain: list[str] = []
    log_line: str | None = None


class _Test(_Strict):
    id: str = Field(min_length=1)
    note: str = ""
    with_: dict[str, Any] = Field(default={}, alias="with")

    @field_validator("with_")
    @classmethod
    def _only_constants(cls, value: dict[str, Any]) -> dict[str, Any]:
        wrong = sorted(set(value) - set(OVERRIDABLE))
        if wrong:
            raise ValueError(f"`with` may replace {', '.join(OVERRIDABLE)}, not {', '.join(wrong)}")
        return value


class Group(_Strict):
    """The order group a case's intent is decided in (`group.*`; default: a group of one)."""

    count: int = Field(ge=1)
    risk: float = Field(ge=0)
    notional: float | None = None


class Case(_Test):
    state: dict[str, Any] = {}
    intent: dict[str, Any] = {}
    group: Group | None = None
    # whose rules decide (`applies_to`): an intent's, a cancel's, a modify's, or a modify that
    # grows its order (the intent and modify rules); the intent stands for the order
    request: Literal["intent", "cancel", "modify", "grow"] = "intent"
    expect: Expect


class Scenario(_Test):
    equity: float | None = None
    events: list[dict[str, Any]] = Field(min_length=1)
    expect: dict[str, Expect]


class Defaults(_Strict):
    state: dict[str, Any] = {}
    intent: dict[str, Any] = {}


class TestFile(_Strict):
    policy: str | None = None
    policy_text: str | None = None
    defaults: Defaults = Defaults()
    cases: list[Case] = []
    scenarios: list[Scenario] = []


class SuiteError(PolicyEngineError):
    """A test file that cannot be read: its message says where and why."""


class Suite:
    """A parsed test file: its tests, the policy they test, and where each test is written."""

    def __init__(self, path: str, doc: Document, data: TestFile) -> None:
        self.path = path
        self.doc = doc
        self.data = data

    @classmethod
    def load(cls, path: str) -> Suite:
        try:
            doc = load_document(path)
        except PolicyError as exc:
            raise SuiteError("; ".join(x.format() for x in exc.diagnostics)) from None
        data, problems = _validated(path, doc)
        if data is None or problems:
            raise SuiteError("; ".join(f"{x.span}: {x.message}" for x in problems)) from None
        return cls(path, doc, data)

    @property
    def policy_path(self) -> str | None:
        """The policy file under test (None for an inline `policy_text`)."""
        if self.data.policy_text is not None:
            return None
        here = Path(self.path)
        name = self.data.policy or here.name[: -len(TEST_SUFFIX)] + ".yaml"
        return str(here.parent / name)

    def line(self, section: str, index: int) -> int:
        return self.doc.span((section, index)).line


def _validated(path: str, doc: Document) -> tuple[TestFile | None, list[Diagnostic]]:
    """The test file's model and what is wrong with it (PT111: it breaks the test file's
    schema), each problem where it is written."""
    try:
        data = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc: YamlPath = tuple(err["loc"])
            unknown = err["type"] == "extra_forbidden"  # point at the key that should not be
            where = doc.span(tuple(p for p in loc if p != "with_"), key=unknown)
            shown = ".".join(str(p) for p in loc) or "the file"
            problems.append(d.diagnostic(d.PT111, f"{shown}: {err['msg']}", where))
        return None, problems
    problems = []
    ids = [t.id for t in [*data.cases, *data.scenarios]]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        where = doc.span(("scenarios",) if "scenarios" in doc.data else ("cases",), key=True)
        problems.append(d.diagnostic(d.PT111, f"test ids used twice: {', '.join(twice)}", where))
    if data.policy is not None and data.policy_text is not None:
        message = "give `policy` or `policy_text`, not both"
        problems.append(d.diagnostic(d.PT111, message, doc.span(("policy_text",), key=True)))
    return data, problems


def load_problems(
    path: str, text: str, buffer: Callable[[str], str | None] | None = None
) -> list[Diagnostic]:
    """What `policy test` reports on loading the test file ``path`` holding ``text`` (an
    editor's buffer): its YAML and schema problems, and a policy under test that is missing
    or does not load, said where the test file names it. ``buffer`` gives the text of a
    policy being edited (None: read the file)."""
    try:
        doc = parse_document(text.encode("utf-8"), path)
    except PolicyError as exc:
        return list(exc.diagnostics)
    data, problems = _validated(path, doc)
    if data is None or problems:
        return problems
    suite = Suite(path, doc, data)
    target = suite.policy_path
    where = doc.span(("policy",) if data.policy is not None else ("policy_text",), key=True)
    edited = buffer(target) if buffer is not None and target is not None else None
    if target is None:
        found = check_bytes((data.policy_text or "").encode("utf-8"), f"{path}:policy_text")
    elif edited is not None:
        found = check_bytes(edited.encode("utf-8"), target)
    elif not Path(target).is_file():
        return [d.diagnostic(d.PT001, f"the policy under test `{target}` does not exist", where)]
    else:
        found = check_file(target)
    errors = [x for x in found.diagnostics if x.severity is d.Severity.ERROR]
    if errors:
        first = errors[0]
        message = f"the policy does not load: {first.format()}" + (
            f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        )
        return [d.diagnostic(first.code, message, where)]
    return []


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def find_test_files(paths: list[str]) -> list[str]:
    """Test files as given; directories searched for `*_test.yaml` (hidden ones skipped)."""
    out: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(
                    str(p)
                    for p in path.rglob(f"*{TEST_SUFFIX}")
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            out.append(raw)
        else:
            raise FileNotFoundError(raw)
    return list(dict.fromkeys(out))


__all__ = [
    "OVERRIDABLE",
    "TEST_SUFFIX",
    "Case",
    "Defaults",
    "Expect",
    "Scenario",
    "Suite",
    "SuiteError",
    "TestFile",
    "find_test_files",
    "load_problems",
    "merge",
]
