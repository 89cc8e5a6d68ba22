"""Validated document -> :class:`~.model.PolicySpec`: constants decoded, rules and modes read.

The step between the schema and the checker: numeric strings such as ``6%``
become numbers, modes inherit from the milder mode, every rule gets its
kind, defaults and expression sources (with the YAML path they live at).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import yaml

from .. import diagnostics as d
from ..decision_codes import rule_code
from ..diagnostics import Diagnostic
from ..lang import eventtime
from ..lang.eventtime import MAX_TIME, MIN_TIME
from ..lang.lexical import parse_number
from ..lang.valuetypes import Const
from .model import (
    CohortSpec,
    ExprSource,
    InputSpec,
    LatchSpec,
    ModeSpec,
    PolicySpec,
    PropertySpec,
    RuleSpec,
    ScopeSpec,
    TradingDaySpec,
    YamlPath,
)
from .schema import path_text
from .timed import locks_of, windows_of
from .yaml_source import Document

API_VERSION = "policy-engine/v1"

_PERCENT_OR_NUMBER = re.compile(r"^[+-]?[0-9][0-9_]*(\.[0-9_]+)?([eE][+-]?[0-9]+)?%?$")


def constant(value: Any) -> Const:
    """A params/config constant: numeric strings such as `6%` or `1_500` become numbers."""
    if isinstance(value, str) and _PERCENT_OR_NUMBER.match(value):
        sign = -1.0 if value.startswith("-") else 1.0
        return sign * parse_number(value.lstrip("+-"))
    if isinstance(value, list):
        return [constant(v) for v in value]
    if isinstance(value, dict):
        return {k: constant(v) for k, v in value.items()}
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError("must be a finite number")
    return value  # type: ignore[no-any-return]


def build_spec(doc: Document, bad: Sequence[YamlPath] = ()) -> tuple[PolicySpec, list[Diagnostic]]:
    """The policy model of ``doc`` and the problems found building it (constants, modes,
    rules, inputs, windows, integrity): the stage after the schema and the API version.

    With ``bad`` (the paths of schema violations), the model of the parts that validated:
    a rule with a violation is left out, and so is a `params`, `strategies`, `symbols` or
    `cohorts` entry, or a whole section that is wrong as a whole (modes are all or nothing:
    they inherit from each other); the file-wide settings keep their defaults and the
    integrity block is not checked. Such a spec exists only so that the checker can check
    the expressions of the rules that validated (``onepass``); it is never compiled.
    """
    data: dict[str, Any] = doc.data if isinstance(doc.data, dict) else {}
    whole = {str(p[0]) for p in bad if len(p) == 1}
    entries = {(str(p[0]), str(p[1])) for p in bad if len(p) > 1}
    problems: list[Diagnostic] = []

    def section(name: str) -> dict[str, Any]:
        raw = data.get(name)
        if name in whole or not isinstance(raw, dict):
            return {}
        return {k: v for k, v in raw.items() if (name, str(k)) not in entries}

    def consts(value: Any, path: YamlPath) -> Any:
        try:
            return constant(value)
        except ValueError as exc:
            problems.append(d.diagnostic(d.PT308, f"`{path_text(path)}`: {exc}", doc.span(path)))
            return value

    def configs(name: str) -> dict[str, dict[str, Const]]:
        return {
            key: {k: consts(v, (name, key, k)) for k, v in cfg.items()}
            for key, cfg in section(name).items()
            if isinstance(cfg, dict)
        }

    params = {k: consts(v, ("params", k)) for k, v in section("params").items()}
    strategies = configs("strategies")
    for attrs in strategies.values():
        attrs.setdefault("enabled", True)
    symbols = configs("symbols")
    cohorts: dict[str, CohortSpec] = {}
    for name, cfg in section("cohorts").items():
        if isinstance(cfg, list):  # the short form: just the members
            cohorts[name] = CohortSpec(name, tuple(str(m) for m in cfg))
            continue
        attrs = {k: consts(v, ("cohorts", name, k)) for k, v in cfg.items() if k != "symbols"}
        cohorts[name] = CohortSpec(name, tuple(str(m) for m in cfg.get("symbols", [])), attrs)
    modes_ok = "modes" not in whole and not any(p[0] == "modes" for p in entries)
    raw_modes = section("modes") if "modes" in data and modes_ok else {"normal": {}}
    if bad and "normal" not in raw_modes:
        raw_modes = {"normal": {}}  # checking expressions needs the mildest mode
    modes = _modes(doc, raw_modes, problems)
    raw_rules = data.get("rules") if "rules" not in whole else None
    bad_rules = {int(p[1]) for p in bad if len(p) > 1 and p[0] == "rules"}
    rules = tuple(
        _rule(doc, i, r, problems)
        for i, r in enumerate(raw_rules if isinstance(raw_rules, list) else [])
        if i not in bad_rules and isinstance(r, dict)
    )
    envelope = {
        k: ExprSource(_expr_text(doc, ("envelope", k)), ("envelope", k))
        for k in section("envelope")
    }
    settings: dict[str, Any] = {
        "version": 1,
        "description": "",
        "reservation_ttl_sec": None,
        "min_risk_abs": 0.0,
    }  # a partial spec's: it is checked, never compiled
    if not bad:
        timezone = _timezone(doc, data.get("timezone", "UTC"), ("timezone",), problems)
        raw_day = data.get("trading_day", {})
        day_zone = raw_day.get("timezone", timezone)
        settings = {
            "version": data["version"],
            "description": data.get("description", ""),
            "reservation_ttl_sec": data.get("reservation_ttl_sec"),
            "min_risk_abs": float(consts(data.get("min_risk_abs", 0.0), ("min_risk_abs",))),
            "timezone": timezone,
            "trading_day": TradingDaySpec(
                _timezone(doc, day_zone, ("trading_day", "timezone"), problems),
                raw_day.get("rollover", "00:00"),
            ),
        }
    inputs = {k: v for k, v in section("inputs").items() if isinstance(v, dict)}
    scopes = {k: v for k, v in section("scopes").items() if isinstance(v, dict) and "key" in v}
    spec = PolicySpec(
        path=doc.path,
        content_hash=doc.content_hash,
        api_version=API_VERSION,
        name=str(data.get("name")),
        params=params,
        strategies=strategies,
        symbols=symbols,
        cohorts=cohorts,
        modes=modes,
        rules=rules,
        envelope=envelope,
        inputs=_inputs(doc, inputs, problems),
        scopes=_scopes(scopes, consts),
        windows=windows_of(doc, section("windows"), problems),
        latches=_latches(doc, section("latches")),
        locks=locks_of(doc, section("locks"), problems),
        properties=_properties(doc, data.get("properties")),
        currencies=tuple(data.get("currencies") or ()),
        **settings,
    )
    if not bad:
        problems += integrity_problems(doc, data, len(rules))
    return spec, problems


def api_version_problems(doc: Document) -> list[Diagnostic]:
    """PT112 when the document is written for another API version than this release reads."""
    version = doc.data["api_version"]
    if version == API_VERSION:
        return []
    message = f"unsupported api_version `{version}` (this release reads `{API_VERSION}`)"
    return [d.diagnostic(d.PT112, message, doc.span(("api_version",)))]


def content_digest(data: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the document's content without its `integrity` key (canonical JSON:
    comments, key order and formatting do not count)."""
    content = {k: v for k, v in data.items() if k != "integrity"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def integrity_block(data: dict[str, Any]) -> str:
    """The `integrity` block that seals ``data`` (`policy integrity` prints it, the editor
    inserts it): its rule count and content digest, as YAML lines."""
    rules = data.get("rules")
    count = len(rules) if isinstance(rules, list) else 0
    return f'integrity:\n  rules: {count}\n  digest: "{content_digest(data)}"\n'


# What may precede the `integrity` block: the header. Anything else before it could be cut
# off by a truncation together with the block, leaving a file that loads unsealed.
SEAL_HEADER = ("api_version", "name", "version")


def integrity_problems(doc: Document, data: dict[str, Any], rule_count: int) -> list[Diagnostic]:
    """PT113 when the file does not hold what its `integrity` declares: a file cut at a rule
    boundary is still valid YAML, and would load with its last caps gone. The block must sit
    at the top (only the header before it), where a truncation cannot remove it silently."""
    declared = data.get("integrity")
    if not isinstance(declared, dict):
        return []
    out = []
    keys = list(data)
    before = [k for k in keys[: keys.index("integrity")] if k not in SEAL_HEADER]
    if before:
        message = (
            f"the `integrity` block must be at the top of the file (after `api_version`, "
            f"`name`, `version`), not after `{before[0]}`: a truncation cuts off a block at "
            f"the end together with what it seals"
        )
        help_ = "move the block up (`policy integrity FILE` prints it)"
        out.append(d.diagnostic(d.PT113, message, doc.span(("integrity",), key=True), help_))
    rules = declared.get("rules")
    if rules is not None and rules != rule_count:
        message = f"the file holds {rule_count} rules but `integrity` declares {rules} (truncated or edited?)"
        out.append(d.diagnostic(d.PT113, message, doc.span(("integrity", "rules"))))
    digest = declared.get("digest")
    if digest is not None and digest != content_digest(data):
        message = "the content does not match `integrity.digest` (edited without updating it, or truncated?)"
        out.append(d.diagnostic(d.PT113, message, doc.span(("integrity", "digest"))))
    return out


def _timezone(doc: Document, name: str, path: YamlPath, problems: list[Diagnostic]) -> str:
    """``name`` when it is a canonical time zone; PT311 when it follows the host (such as
    ``localtime``), else PT308 with a suggestion."""
    try:
        eventtime.zone(name)
    except eventtime.HostZoneError as exc:
        problems.append(d.diagnostic(d.PT311, f"`{path_text(path)}`: {exc}", doc.span(path)))
        return "UTC"
    except eventtime.TimeError as exc:
        hint = d.suggest(name, eventtime.zone_names()) if "unknown" in str(exc) else None
        problems.append(d.diagnostic(d.PT308, f"`{path_text(path)}`: {exc}", doc.span(path), hint))
        return "UTC"
    return name


def _inputs(doc: Document, raw: dict[str, Any], problems: list[Diagnostic]) -> dict[str, InputSpec]:
    """The declared extra intent fields: a type and a default (null allowed) or `required`."""
    out: dict[str, InputSpec] = {}
    for name, cfg in raw.items():
        path: YamlPath = ("inputs", name)
        kind = cfg["type"]
        required = cfg.get("required") is True
        if ("default" in cfg) == required:
            message = (
                f"input `{name}` gives both `default` and `required: true`: choose one"
                if required
                else f"input `{name}` needs a `default` (null when it may be absent) or `required: true`"
            )
            problems.append(d.diagnostic(d.PT111, message, doc.span(path, key=True)))
            continue
        default = cfg.get("default")
        try:
            value = None if default is None else input_value(kind, default)
        except ValueError as exc:
            where = (*path, "default")
            problems.append(d.diagnostic(d.PT308, f"`{path_text(where)}`: {exc}", doc.span(where)))
            continue
        out[name] = InputSpec(name, kind, value, required)
    return out


def _scopes(raw: dict[str, Any], consts: Callable[[Any, YamlPath], Any]) -> dict[str, ScopeSpec]:
    """The declared scopes: the intent field each is keyed by, constants per key value."""
    return {
        name: ScopeSpec(
            name,
            tuple(
                str(k).removeprefix("intent.")
                for k in (cfg["key"] if isinstance(cfg["key"], list) else [cfg["key"]])
            ),
            {
                value: {
                    k: consts(v, ("scopes", name, "values", value, k)) for k, v in attrs.items()
                }
                for value, attrs in (cfg.get("values") or {}).items()
            },
        )
        for name, cfg in raw.items()
    }


def _latches(doc: Document, raw: dict[str, Any]) -> dict[str, LatchSpec]:
    return {
        name: LatchSpec(
            name,
            ExprSource(_expr_text(doc, ("latches", name, "when")), ("latches", name, "when")),
            cfg["until"],
        )
        for name, cfg in raw.items()
    }


def _properties(doc: Document, raw: Any) -> tuple[PropertySpec, ...]:
    """The `properties:` `policy verify` proves (the schema checked their shape)."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        PropertySpec(
            str(item["id"]),
            ExprSource(_expr_text(doc, ("properties", i, "assert")), ("properties", i, "assert")),
        )
        for i, item in enumerate(raw)
        if isinstance(item, dict) and "id" in item and "assert" in item
    )


def input_value(kind: str, value: Any) -> Const | datetime:
    """A declared input's default as the intent model holds it (ValueError if it is not one)."""
    if kind == "time":
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
        if when is None or when.utcoffset() is None or not MIN_TIME <= when < MAX_TIME:
            raise ValueError(f"must be a timestamp with a UTC offset, not {value!r}")
        return when
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or abs(value) > 1e15:
            raise ValueError(f"must be a finite number of at most 1e15, not {value!r}")
        return value  # type: ignore[no-any-return]
    if kind == "string" and not (isinstance(value, str) and len(value) <= 1000):
        raise ValueError(f"must be a string of at most 1000 characters, not {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value  # type: ignore[no-any-return]


def _expr_text(doc: Document, path: YamlPath) -> str:
    node = doc.values[path]
    assert isinstance(node, yaml.ScalarNode)
    return str(node.value)


def _modes(doc: Document, raw: dict[str, Any], problems: list[Diagnostic]) -> dict[str, ModeSpec]:
    """The modes in the order written, mildest first (`normal` must come first); each
    inherits the keys it does not set from the one before it."""
    modes: dict[str, ModeSpec] = {}
    inherited: dict[str, Any] = {"risk_multiplier": 1.0, "flatten_only": False}
    names = list(raw)
    if names and names[0] != "normal":
        message = (
            f"`normal` must be the first mode (modes run mildest to most severe as written), "
            f"not `{names[0]}`"
        )
        problems.append(d.diagnostic(d.PT111, message, doc.span(("modes", names[0]), key=True)))
    for index, name in enumerate(names):
        cfg = dict(raw[name])
        when_path = ("modes", name, "when")
        when_src = ExprSource(_expr_text(doc, when_path), when_path) if "when" in cfg else None
        cfg.pop("when", None)
        for k, v in list(cfg.items()):
            try:
                cfg[k] = constant(v)
            except ValueError as exc:
                where = ("modes", name, k)
                problems.append(
                    d.diagnostic(d.PT308, f"`{path_text(where)}`: {exc}", doc.span(where))
                )
                cfg[k] = 0.0
        merged = {**inherited, **cfg}
        attrs = {k: v for k, v in merged.items() if k not in ("risk_multiplier", "flatten_only")}
        modes[name] = ModeSpec(
            name=name,
            risk_multiplier=float(merged["risk_multiplier"]),
            flatten_only=bool(merged["flatten_only"]),
            when=when_src,
            attrs=attrs,
            index=index,
        )
        inherited = merged
    return modes


def _rule(doc: Document, index: int, raw: dict[str, Any], problems: list[Diagnostic]) -> RuleSpec:
    path: YamlPath = ("rules", index)
    kinds = [k for k in ("require", "limit", "allow") if k in raw]
    if len(kinds) != 1:
        message = f"rule `{raw['id']}` must have exactly one of `require`, `limit` or `allow`" + (
            f" (it has {', '.join(f'`{k}`' for k in kinds)})" if kinds else ""
        )
        problems.append(d.diagnostic(d.PT111, message, doc.span(path)))
        kinds = kinds or ["require"]
    kind: Literal["require", "limit", "allow"] = kinds[0]
    if raw.get("enforcement") == "warn" and kind == "allow":
        # A shadow allow would still have to decide (approve early or not); refuse the ambiguity.
        message = f"`enforcement: warn` cannot apply to an `allow` rule (`{raw['id']}`): an allow never blocks"
        problems.append(d.diagnostic(d.PT111, message, doc.span((*path, "enforcement"))))
    enforce_from = _enforce_from(doc, raw, path, kind, problems)
    if raw.get("on_reject") == "defer" and (kind == "allow" or raw.get("on_exceed") == "clip"):
        message = f"`on_reject: defer` needs a rule that rejects, and `{raw['id']}` does not"
        problems.append(d.diagnostic(d.PT111, message, doc.span((*path, "on_reject"), key=True)))
    if "when_missing" in raw and kind == "allow":
        # An allow never blocks: there is nothing to let pass when its value is missing.
        message = (
            f"`when_missing` cannot apply to an `allow` rule (`{raw['id']}`): an allow never blocks"
        )
        problems.append(d.diagnostic(d.PT111, message, doc.span((*path, "when_missing"), key=True)))
    if "on_exceed" in raw and kind != "limit":
        message = f"`on_exceed` only applies to a `limit` rule, and `{raw['id']}` is a `{kind}`"
        problems.append(d.diagnostic(d.PT111, message, doc.span((*path, "on_exceed"), key=True)))
    expr_path = (*path, kind)
    expr = ExprSource(_expr_text(doc, expr_path) if expr_path in doc.values else "true", expr_path)
    when = ExprSource(_expr_text(doc, (*path, "when")), (*path, "when")) if "when" in raw else None
    text = ExprSource(raw["message"], (*path, "message")) if "message" in raw else None
    rule_id: str = raw["id"]
    return RuleSpec(
        index=index,
        id=rule_id,
        category=raw.get("category", "POLICY"),
        kind=kind,
        expr=expr,
        when=when,
        on_exceed=raw.get("on_exceed", "reject"),
        enforcement=raw.get("enforcement", "enforce"),
        code=raw["code"] if "code" in raw else rule_code(rule_id),
        message=text,
        description=raw.get("description"),
        enforce_from=enforce_from,
        when_missing=raw.get("when_missing", "reject"),
        on_reject=raw.get("on_reject", "reject"),
        applies_to=tuple(raw.get("applies_to", ("intent",))),
    )


def _enforce_from(
    doc: Document, raw: dict[str, Any], path: YamlPath, kind: str, problems: list[Diagnostic]
) -> datetime | None:
    """A rule's staged-rollout instant (an aware timestamp), or None."""
    text = raw.get("enforce_from")
    if text is None:
        return None
    where = doc.span((*path, "enforce_from"))
    if raw.get("enforcement") == "warn" or kind == "allow":
        what = "`enforcement: warn` (always shadow)" if kind != "allow" else "an `allow` rule"
        message = f"`enforce_from` cannot apply to {what} (`{raw['id']}`)"
        problems.append(d.diagnostic(d.PT111, message, where))
        return None
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None or not MIN_TIME <= when < MAX_TIME:
        message = (
            f"`{path_text((*path, 'enforce_from'))}`: `{text}` is not a timestamp with a UTC "
            f"offset in [{MIN_TIME:%Y-%m-%d}, {MAX_TIME:%Y-%m-%d})"
        )
        problems.append(d.diagnostic(d.PT308, message, where, "write it as 2026-03-01T00:00:00Z"))
        return None
    return when
