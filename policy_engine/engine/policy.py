"""`load_policy` and :class:`Policy`: a checked policy compiled behind a small API.

Everything here is pure: it reads the intent and the snapshot it is given and
nothing else (no clock, no I/O, no randomness), and never raises into the
caller. :meth:`Policy.decide` is the fast path (one generated function; any
exception in it re-runs the reference interpreter, which names the cause and
fails closed with ``rejected_eval_error``); :meth:`Policy.evaluate` wraps the
outcome in a :class:`~.verdict.Verdict` that explains itself on demand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container
from dataclasses import replace
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from ..diagnostics import Diagnostic
from ..document.checker import CheckedPolicy, CheckedRule
from ..document.model import REQUEST_CHAINS, RuleSpec
from ..document.names import Ref, Source
from ..document.stages import checked_policy
from ..document.yaml_source import Document, load_document, parse_document
from ..lang.eventtime import TradingDay, zone
from ..lang.syntax import Name, walk
from .codegen import (
    ENVELOPE_KEYS,
    Chain,
    EnvelopeFn,
    LatchFn,
    compile_chain,
    compile_envelope,
    compile_latches,
)
from .contracts import PolicyRef, PortfolioConstraintEnvelope, PortfolioIntent, fast_model
from .explain import Explainer
from .intents import intent_model
from .interpreter import latch_holds, run_chain
from .outcome import Outcome
from .runtime import MODE_FROM_TIERS, ModeState, RuntimeData, mode_source_reason, scope_key
from .verdict import Verdict


def load_policy(path: str | Path) -> Policy:
    """Read, validate, check and compile a policy file. Raises :class:`PolicyError`."""
    return Policy.from_document(load_document(path))


def load_policy_text(text: str | bytes, path: str = "<policy>") -> Policy:
    """Validate, check and compile policy text (no file is read). Raises :class:`PolicyError`."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return Policy.from_document(parse_document(raw, path))


class ModeInfo(NamedTuple):
    """The mode in force: its name, where it comes from and why."""

    name: str
    source: str  # MODE_FROM_TIERS or MODE_FROM_OVERRIDE (runtime.py)
    reason: str
    level: int  # the mode's position, mildest 0


_INF = float("inf")
_ENVELOPE_NUMBERS = ("max_new_risk_abs", "symbol_max_risk_abs", "size_multiplier_cap")


class Policy:
    """A compiled policy. Build with :func:`load_policy` or :func:`load_policy_text`."""

    def __init__(
        self, checked: CheckedPolicy, source: str | None = None, *, kind: str = "intent"
    ) -> None:
        spec = checked.spec
        # Every rule, whatever it decides; `checked` below holds the chain of `kind` only (an
        # intent's, unless this is the chain of a request: see `for_request`).
        self.document = checked
        self.kind = kind
        self._requests: dict[str, Policy] = {}
        checked = rules_for(checked, REQUEST_CHAINS[kind])
        self.checked = checked
        self.source = source  # the YAML text it was loaded from, when known (for journals)
        self.name = spec.name
        self.version = spec.version
        self.content_hash = spec.content_hash
        self.path = spec.path
        self.description = spec.description
        self.rules: tuple[RuleSpec, ...] = tuple(r.spec for r in checked.rules)
        self.reservation_ttl_sec = spec.reservation_ttl_sec
        self.declared_modes: tuple[str, ...] = tuple(spec.modes)  # mildest first
        self.warnings: tuple[Diagnostic, ...] = checked.warnings
        self.ref = PolicyRef(name=spec.name, version=spec.version, hash=spec.content_hash)
        self.data = RuntimeData.of(checked)
        # When the trading day rolls over (the control core starts a new day on event time).
        self.calendar = TradingDay(zone(spec.trading_day.timezone), spec.trading_day.rollover)
        # The intents this policy reads: PortfolioIntent with its declared `inputs`.
        self.intent_model: type[PortfolioIntent] = intent_model(spec.name, spec.inputs)
        self.windows = tuple(spec.windows.values())  # rolling counts the core keeps
        self.locks = tuple(spec.locks.values())  # timed locks the core keeps
        # The windows and locks each rule reads, ("window" | "lock", name): a rejection by it
        # reports when they free up (retry_after; `on_reject: defer` answers `deferred`).
        self.rule_waits: tuple[tuple[tuple[str, str], ...], ...] = (
            tuple(_waits(checked, r) for r in checked.rules) if spec.locks or spec.windows else ()
        )
        self.timezone = spec.timezone  # where a lock `until: "HH:MM"` reads local time
        # The intent's optional string fields a trade remembers, so that any policy's scopes
        # can be derived for it later (strategy, symbol and correlation_bucket it keeps).
        self.key_fields: tuple[str, ...] = (
            "template_id",
            "playbook_id",
            "regime_state",
            *(n for n, i in spec.inputs.items() if i.type == "string"),
        )
        self.read_keys = attrgetter(*self.key_fields)  # intent -> their values, at once
        self.no_keys = (None,) * len(self.key_fields)
        # The generated chain itself: it raises where it cannot decide (then `decide` asks
        # the interpreter); public for tests and benchmarks that measure it alone.
        self.chain: Chain
        self.chain, self.chain_source = compile_chain(checked, self.data)
        self._envelope_fn: EnvelopeFn
        self._envelope_fn, _source = compile_envelope(checked, self.data)
        self.latch_names: tuple[str, ...] = tuple(spec.latches)
        # The generated latch conditions (None where one raises: the interpreter then names
        # the cause); public, like `chain`, for tests that prove the fast path runs.
        self.latch_fn: LatchFn
        self.latch_fn, _source = compile_latches(checked, self.data)
        self._no_latch_met = [False] * len(self.latch_names)  # what latch_fn gives then
        self._templates = _envelope_templates(self)
        # Per mode, the envelope when the state adds nothing to its template (a policy whose
        # envelope reads no aggregate): built once, shared by every decision in that mode.
        self._fixed: list[PortfolioConstraintEnvelope | None] = [None] * len(self.data.modes)
        self.explainer = Explainer(self)

    def for_request(self, kind: str) -> Policy:
        """The policy that decides a request of ``kind`` (``cancel``, ``modify``, or
        ``grow``: a modify that grows its order, decided by the intent rules and the modify
        rules, in the order written); the same modes, envelope and latches. Built once."""
        chain = self._requests.get(kind)
        if chain is None:
            same = rules_for(self.document, REQUEST_CHAINS[kind]) is self.checked
            chain = self if same else Policy(self.document, self.source, kind=kind)
            self._requests[kind] = chain
        return chain

    @classmethod
    def from_document(cls, doc: Document) -> Policy:
        return cls(checked_policy(doc), doc.source)

    def __repr__(self) -> str:
        return (
            f"<Policy {self.name} v{self.version} {len(self.rules)} rules {self.content_hash[:19]}>"
        )

    # --- evaluation ----------------------------------------------------------------------
    def decide(self, intent: Any, snapshot: Any) -> Outcome:
        """The outcome alone: the fast path for loops that need no explanation. Never raises."""
        try:
            return self.chain(intent, snapshot)
        except Exception:
            return run_chain(self.checked, self.data, intent, snapshot)

    def evaluate(self, intent: Any, snapshot: Any) -> Verdict:
        """Decide one intent against one snapshot. Pure; never raises."""
        try:
            outcome = self.chain(intent, snapshot)
        except Exception:
            outcome = run_chain(self.checked, self.data, intent, snapshot)
        return Verdict(self, intent, snapshot, outcome)

    def interpret(self, intent: Any, snapshot: Any) -> Outcome:
        """The reference interpreter's outcome (slow; for errors, tests and explain)."""
        return run_chain(self.checked, self.data, intent, snapshot)

    def explain(self, intent: Any, snapshot: Any) -> list[dict[str, Any]]:
        """Every rule's verdict and sub-expression values (not only up to the first failure)."""
        verdict = Verdict(self, intent, snapshot, self.interpret(intent, snapshot))
        return self.explainer.every_rule(verdict)

    def scopes_of(self, field: Callable[[str], str | None]) -> dict[str, str] | None:
        """The bucket of each declared scope a trade counts in (scope -> key value), reading
        its string fields with ``field``; a scope whose key is null is left out."""
        if not self.data.scope_fields:
            return None
        found = {}
        for scope, fields in self.data.scope_fields.items():  # (a loop: a hot path)
            # a one-field key read directly, a composite one joined by scope_key
            value = field(fields[0]) if len(fields) == 1 else scope_key(fields, field)
            if value is not None:
                found[scope] = value
        return found or None

    def latches_met(self, snapshot: Any, skip: Container[str] = ()) -> list[tuple[str, str | None]]:
        """The latches (but those in ``skip``) whose `when` holds for ``snapshot``, in
        declaration order, each with the cause if its `when` failed: a latch that cannot be
        evaluated is met (fail closed). Pure; never raises."""
        try:
            values = self.latch_fn(snapshot)
        except Exception:
            values = [None] * len(self.latch_names)
        if values == self._no_latch_met:  # (every `when` False: the common case, in C)
            return []
        met: list[tuple[str, str | None]] = []
        for name, value in zip(self.latch_names, values, strict=True):
            if name in skip or value is False:
                continue
            if value is None:  # the generated code failed: the interpreter names the cause
                try:
                    if not latch_holds(self.checked, self.data, name, snapshot):
                        continue
                    met.append((name, None))
                except Exception as exc:
                    met.append((name, getattr(exc, "detail", None) or str(exc)))
                continue
            met.append((name, None))
        return met

    def cohort_of(self, symbol: str, correlation_bucket: str | None) -> str:
        """The cohort an intent on ``symbol`` counts in."""
        return self.data.cohort_name(symbol, correlation_bucket)

    # --- modes and the envelope -----------------------------------------------------------
    def mode_of(self, snapshot: Any) -> ModeInfo:
        """The mode in force for ``snapshot``; a failing tier condition means risk_off."""
        try:
            m, overridden, _raw = self._envelope_fn(snapshot)
            mode: ModeState = self.data.modes[m]
        except Exception as exc:
            worst = self.data.modes[-1]
            reason = f"mode evaluation failed: {exc}"
            return ModeInfo(worst.name, MODE_FROM_TIERS, reason, worst.index)
        source, reason = mode_source_reason(mode, overridden, snapshot)
        return ModeInfo(mode.name, source, reason, mode.index)

    def envelope(self, snapshot: Any, *, fast: bool = True) -> PortfolioConstraintEnvelope:
        """The constraint envelope for ``snapshot``; fails closed to "no new risk".

        ``fast=False`` skips the per-mode templates (the same values, computed the careful
        way every time: what the fast path falls back to, and what tests compare it with).
        """
        templates = self._templates
        if templates is not None and fast:
            # The fast path: the state-independent fields come from the mode's template.
            try:
                m, _ov, raw = self._envelope_fn(snapshot)
            except Exception:
                return self._careful_envelope(snapshot)
            if not raw:
                fixed = self._fixed[m]
                if fixed is None:
                    fixed = self._fixed[m] = fast_model(
                        PortfolioConstraintEnvelope, templates[m].copy()
                    )
                return fixed
            values = templates[m].copy()
            for key, value in raw.items():
                if type(value) is not float and type(value) is not int:
                    return self._careful_envelope(snapshot)
                if value != value:
                    return self._careful_envelope(snapshot)
                if value == _INF:
                    values[key] = None
                elif key == "max_additional_positions":
                    values[key] = math.floor(value) if value > 0 else 0
                elif key in _ENVELOPE_NUMBERS:
                    values[key] = float(value) if value > 0 else 0.0
            env: PortfolioConstraintEnvelope = fast_model(PortfolioConstraintEnvelope, values)
            return env
        return self._careful_envelope(snapshot)

    def _careful_envelope(self, snapshot: Any) -> PortfolioConstraintEnvelope:
        mode_name = self.data.modes[-1].name
        try:
            m, _ov, raw = self._envelope_fn(snapshot)
            mode = self.data.modes[m]
            mode_name = mode.name
            values: dict[str, Any] = {
                "portfolio_mode": mode.name,
                "max_new_risk_abs": _cap(raw.get("max_new_risk_abs")),
                "max_additional_positions": _count(raw.get("max_additional_positions")),
                "symbol_max_risk_abs": _cap(raw.get("symbol_max_risk_abs")),
                "size_multiplier_cap": _cap(
                    raw.get("size_multiplier_cap", mode.values["risk_multiplier"])
                ),
                "force_flatten_only": bool(mode.values["flatten_only"]),
                "policy_version": self.version,
            }
        except Exception:
            values = {
                "portfolio_mode": mode_name,
                "max_new_risk_abs": 0.0,
                "max_additional_positions": 0,
                "symbol_max_risk_abs": 0.0,
                "size_multiplier_cap": 0.0,
                "force_flatten_only": True,
                "policy_version": self.version,
            }
        result: PortfolioConstraintEnvelope = fast_model(PortfolioConstraintEnvelope, values)
        return result


def rules_for(checked: CheckedPolicy, kinds: frozenset[str]) -> CheckedPolicy:
    """``checked`` with only the rules that apply to one of ``kinds``, numbered in their
    new chain (each remembers where it is written); ``checked`` itself when all do."""
    kept = [r for r in checked.rules if kinds.intersection(r.spec.applies_to)]
    if len(kept) == len(checked.rules):
        return checked
    rules = tuple(
        CheckedRule(replace(r.spec, index=i, written_at=r.spec.index), r.expr, r.when, r.message)
        for i, r in enumerate(kept)
    )
    return replace(checked, rules=rules)


def _cap(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isinf(value) and value > 0):
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN in envelope")
    return max(0.0, float(value))


def _count(value: Any) -> int | None:
    capped = _cap(value)
    return None if capped is None else math.floor(capped)


def _waits(checked: CheckedPolicy, rule: Any) -> tuple[tuple[str, str], ...]:
    """The windows and locks ``rule`` reads, in order, once each."""
    found: dict[tuple[str, str], None] = {}
    for part in (rule.expr, rule.when):
        for node in walk(part) if part is not None else ():
            if isinstance(node, Name):
                ref = checked.scope.resolve(node.path)
                if isinstance(ref, Ref) and ref.source is Source.WINDOW:
                    found[("window", ref.key)] = None
                elif isinstance(ref, Ref) and ref.source is Source.LOCK:
                    found[("lock", ref.key)] = None
    return tuple(found)


def _envelope_templates(policy: Policy) -> tuple[dict[str, Any], ...] | None:
    """Per mode, the envelope fields that do not depend on the state (``None``: always
    take the careful path, e.g. for a multiplier that is not a plain number)."""
    out = []
    for mode in policy.data.modes:
        rm = mode.values.get("risk_multiplier")
        if isinstance(rm, bool) or not isinstance(rm, int | float) or rm != rm:
            return None
        values: dict[str, Any] = {
            "portfolio_mode": mode.name,
            **dict.fromkeys(ENVELOPE_KEYS),
            "size_multiplier_cap": None if rm == _INF else max(0.0, float(rm)),
            "force_flatten_only": bool(mode.values.get("flatten_only")),
            "policy_version": policy.version,
        }
        out.append(values)
    return tuple(out)


__all__ = ["ModeInfo", "Policy", "Verdict", "load_policy", "load_policy_text"]
