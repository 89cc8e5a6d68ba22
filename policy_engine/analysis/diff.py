"""Comparing two versions of a policy: the version-bump check (PT420) and a semantic diff."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .. import diagnostics as d
from ..diagnostics import Diagnostic
from ..document.checker import CheckedPolicy, CheckedRule
from ..document.yaml_source import Document
from ..lang import syntax as s
from ..lang.lexical import fmt
from .check import Result


def _data_without_version(doc: Document) -> Any:
    data = doc.data if isinstance(doc.data, dict) else {}
    return {k: v for k, v in data.items() if k != "version"}


def version_check(old: Result, new: Result) -> list[Diagnostic]:
    """PT420: the meaning changed but `version` did not go up."""
    if old.doc is None or new.doc is None or old.checked is None or new.checked is None:
        return []
    if _data_without_version(old.doc) == _data_without_version(new.doc):
        return []
    v_old, v_new = old.checked.spec.version, new.checked.spec.version
    if v_new > v_old:
        return []
    how = "did not change" if v_new == v_old else "went down"
    return [
        d.diagnostic(
            d.PT420,
            f"the policy changed but `version` {how} ({v_old} -> {v_new}); bump it to {v_old + 1}",
            new.doc.span(("version",)),
        )
    ]


def semantic_diff(old: CheckedPolicy, new: CheckedPolicy) -> list[str]:
    """A short, human diff: rules added, removed, reordered or changed, and limits changed."""
    out: list[str] = []
    o_spec, n_spec = old.spec, new.spec
    if o_spec.version != n_spec.version:
        out.append(f"version {o_spec.version} -> {n_spec.version}")
    o_rules = {r.spec.id: r for r in old.rules}
    n_rules = {r.spec.id: r for r in new.rules}
    for rid in n_rules:
        if rid not in o_rules:
            out.append(f"+ rule `{rid}` added at position {n_rules[rid].spec.index + 1}")
    for rid in o_rules:
        if rid not in n_rules:
            out.append(f"- rule `{rid}` removed")
    common_old = [r for r in o_rules if r in n_rules]
    common_new = [r for r in n_rules if r in o_rules]
    if common_old != common_new:
        out.append(f"~ rules reordered: {' > '.join(common_new)} (was {' > '.join(common_old)})")
    for rid in common_new:
        a, b = o_rules[rid], n_rules[rid]
        for label, x, y in _rule_fields(a, b):
            if x != y:
                out.append(f"~ rule `{rid}` {label}: `{x}` -> `{y}`")
    for section, before, after in (
        ("params", o_spec.params, n_spec.params),
        ("strategies", o_spec.strategies, n_spec.strategies),
        ("symbols", o_spec.symbols, n_spec.symbols),
        ("cohorts", _cohorts(o_spec), _cohorts(n_spec)),
        ("modes", _modes(old), _modes(new)),
        ("inputs", _declared(o_spec.inputs), _declared(n_spec.inputs)),
        ("scopes", _declared(o_spec.scopes), _declared(n_spec.scopes)),
        ("windows", _declared(o_spec.windows), _declared(n_spec.windows)),
        ("latches", _latches(old), _latches(new)),
    ):
        for key in sorted(set(before) | set(after)):
            x, y = before.get(key), after.get(key)
            if x == y:
                continue
            if x is None:
                out.append(f"+ {section}.{key} = {fmt_value(y)}")
            elif y is None:
                out.append(f"- {section}.{key} (was {fmt_value(x)})")
            elif isinstance(x, dict) and isinstance(y, dict):
                for sub in sorted(set(x) | set(y)):
                    if x.get(sub) != y.get(sub):
                        out.append(
                            f"~ {section}.{key}.{sub}: {fmt_value(x.get(sub))} -> {fmt_value(y.get(sub))}"
                        )
            else:
                out.append(f"~ {section}.{key}: {fmt_value(x)} -> {fmt_value(y)}")
    if list(o_spec.modes) != list(n_spec.modes) and set(o_spec.modes) == set(n_spec.modes):
        out.append(
            f"~ modes reordered (mildest first): {' > '.join(n_spec.modes)} "
            f"(was {' > '.join(o_spec.modes)})"
        )
    for key in ("name", "description", "reservation_ttl_sec", "min_risk_abs", "timezone"):
        x, y = getattr(o_spec, key), getattr(n_spec, key)
        if x != y:
            out.append(f"~ {key}: {fmt_value(x)} -> {fmt_value(y)}")
    if o_spec.trading_day != n_spec.trading_day:
        o_day, n_day = o_spec.trading_day, n_spec.trading_day
        out.append(
            f"~ trading_day: rollover {o_day.rollover} {o_day.timezone} -> "
            f"{n_day.rollover} {n_day.timezone}"
        )
    o_env = {k: s.unparse(v) for k, v in old.envelope.items()}
    n_env = {k: s.unparse(v) for k, v in new.envelope.items()}
    for key in sorted(set(o_env) | set(n_env)):
        if o_env.get(key) != n_env.get(key):
            out.append(f"~ envelope.{key}: `{o_env.get(key, '')}` -> `{n_env.get(key, '')}`")
    return out


def fmt_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items()) + "}"
    return fmt(value)


def _rule_fields(a: CheckedRule, b: CheckedRule) -> list[tuple[str, Any, Any]]:
    def when(r: CheckedRule) -> str:
        return s.unparse(r.when) if r.when is not None else "always"

    def msg(r: CheckedRule) -> str:
        return r.spec.message.text if r.spec.message is not None else ""

    return [
        ("expression", _expr(a), _expr(b)),
        ("when", when(a), when(b)),
        ("on_exceed", a.spec.on_exceed, b.spec.on_exceed),
        ("enforcement", a.spec.enforcement, b.spec.enforcement),
        ("enforce_from", _instant(a), _instant(b)),
        ("when_missing", a.spec.when_missing, b.spec.when_missing),
        ("code", a.spec.code, b.spec.code),
        ("message", msg(a), msg(b)),
    ]


def _instant(r: CheckedRule) -> str | None:
    return r.spec.enforce_from.isoformat() if r.spec.enforce_from is not None else None


def _expr(r: CheckedRule) -> str:
    return f"{r.spec.kind}: {s.unparse(r.expr)}"


def _cohorts(spec: Any) -> dict[str, Any]:
    return {k: {"symbols": list(c.symbols), **c.attrs} for k, c in spec.cohorts.items()}


def _declared(specs: dict[str, Any]) -> dict[str, Any]:
    """Each declaration (an input, scope or window) as a map of its fields."""
    return {
        name: {k: v for k, v in asdict(spec).items() if k != "name"} for name, spec in specs.items()
    }


def _latches(checked: CheckedPolicy) -> dict[str, Any]:
    """Each latch's `when` by canonical form (reformatting it is no change) and `until`."""
    return {
        name: {"when": s.unparse(checked.latch_whens[name]), "until": latch.until}
        for name, latch in checked.spec.latches.items()
        if name in checked.latch_whens
    }


def _modes(checked: CheckedPolicy) -> dict[str, Any]:
    """Each mode's values; its `when` by canonical form, so that reformatting it (spacing,
    parentheses) is not a change of meaning."""
    out: dict[str, Any] = {}
    whens = checked.mode_whens
    for name, m in checked.spec.modes.items():
        out[name] = {
            "risk_multiplier": m.risk_multiplier,
            "flatten_only": m.flatten_only,
            "when": s.unparse(whens[name]) if name in whens else None,
            **m.attrs,
        }
    return out


__all__ = ["semantic_diff", "version_check"]
