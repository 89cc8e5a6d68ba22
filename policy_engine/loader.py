"""YAML text -> :class:`PolicySpec`, remembering where every node came from.

PyYAML composes the node graph (with marks); this module constructs plain
data from it itself so that it can refuse duplicate keys, cap alias
expansion, and keep the line and column of every key and value. The result
is validated against ``schemas/policy.schema.json`` with jsonschema.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

from . import diagnostics as d
from .diagnostics import Diagnostic, PolicyError, Span
from .lang.lexical import parse_number
from .lang.valuetypes import Const
from .model import MODE_ORDER, CohortSpec, ExprSource, ModeSpec, PolicySpec, RuleSpec, YamlPath

API_VERSION = "policy-engine/v1"
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
    _line_starts: list[int] = field(default_factory=list)

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
        start, end = node.start_mark.index, node.end_mark.index
        raw = self.text[start:end]
        # Greedy subsequence match of the value in the raw scalar text: it skips quotes,
        # block indicators, indentation and folded line breaks alike. In a double-quoted
        # scalar an escape (`\t`, `\"`, `\u0022`) is the one character it stands for, and
        # an escaped line break stands for none.
        escapes = node.style == '"'
        j = 1 if node.style in ('"', "'") else 0  # the opening quote is never content
        for i, ch in enumerate(node.value):
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
                break
            if i == offset:
                return self.position(start + j)
            j += _escape_width(raw, j) if escapes and raw[j] == "\\" else 1
        else:
            if offset >= len(node.value):
                return self.position(start + min(j, len(raw)))
        return self.position(start)


def _escape_width(raw: str, j: int) -> int:
    """Characters taken by the double-quoted YAML escape starting at ``raw[j]``."""
    return {"x": 4, "u": 6, "U": 10}.get(raw[j + 1 : j + 2], 2)


def load_document(path: str | Path, display: str | None = None) -> Document:
    """Read and parse a policy file. Raises :class:`PolicyError` on any problem."""
    shown = display if display is not None else str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(
            [d.diagnostic(d.PT001, f"cannot read file: {exc.strerror or exc}", Span(shown))]
        ) from None
    return parse_document(raw, shown)


def parse_document(raw: bytes, path: str) -> Document:
    if len(raw) > MAX_FILE_BYTES:
        message = f"file is {len(raw)} bytes (the limit is {MAX_FILE_BYTES})"
        raise PolicyError([d.diagnostic(d.PT002, message, Span(path))])
    if b"\x00" in raw:
        raise PolicyError([d.diagnostic(d.PT001, "file is binary, not YAML text", Span(path))])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        doc = Document(path, raw[: exc.start].decode("utf-8", "replace"), "")
        where = doc.position(len(doc.text))
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise PolicyError([d.diagnostic(d.PT001, message, where)]) from None
    doc = Document(path, text, "sha256:" + hashlib.sha256(raw).hexdigest())
    root = _compose(doc)
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
        mark = exc.problem_mark or exc.context_mark
        where = doc.position(mark.index) if mark is not None else Span(doc.path)
        problem = (exc.problem or exc.context or "invalid YAML").rstrip(".")
        problem = re.sub(r"'([^']*)'", r"`\1`", problem)  # house style: user text in backticks
        raise PolicyError([d.diagnostic(d.PT101, problem, where)]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([d.diagnostic(d.PT101, str(exc).strip(), Span(doc.path))]) from None
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
        return self._scalar(node)

    def _key(self, node: yaml.Node) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node)
            if isinstance(value, str | int | float | bool) or value is None:
                return str(node.value)
        where = self.doc.position(node.start_mark.index)
        self.problems.append(d.diagnostic(d.PT105, "mapping keys must be plain scalars", where))
        return None

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag not in _SAFE_TAGS:
            where = self.doc.position(node.start_mark.index)
            self.problems.append(d.diagnostic(d.PT105, f"unsupported YAML tag `{node.tag}`", where))
            return None
        try:
            return self.scalars.construct_object(node, deep=False)
        except yaml.YAMLError as exc:
            where = self.doc.position(node.start_mark.index)
            self.problems.append(d.diagnostic(d.PT101, str(exc).splitlines()[0], where))
            return None


_SAFE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


# --- schema validation -------------------------------------------------------------------


@cache
def policy_schema() -> dict[str, Any]:
    text = files("policy_engine").joinpath("schemas/policy.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_inline_refs(policy_schema()))


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema with its non-recursive `$defs` inlined.

    jsonschema resolves every `$ref` through the referencing registry on every use,
    which was most of the validation time; inlining keeps the published file readable
    and validation about twice as fast. Recursive definitions keep their `$ref`.
    """
    defs = schema.get("$defs", {})
    prefix = "#/$defs/"

    def recursive(name: str) -> bool:
        return prefix + name in json.dumps(defs[name])

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if (
                isinstance(ref, str)
                and ref.startswith(prefix)
                and not recursive(ref[len(prefix) :])
            ):
                merged = {
                    **walk(defs[ref[len(prefix) :]]),
                    **{k: walk(v) for k, v in node.items() if k != "$ref"},
                }
                return merged
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def validate_schema(doc: Document) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(_schema_diagnostics(doc, error))
    return problems


def did_you_mean(word: str, options: Iterator[str] | list[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _where(path: YamlPath) -> str:
    """`rules[0].code`: list items by index, as a risk owner reads them in an editor."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def _schema_diagnostics(doc: Document, error: jsonschema.ValidationError) -> list[Diagnostic]:
    path: YamlPath = tuple(error.absolute_path)
    validator = error.validator
    instance: Any = error.instance
    schema: Any = error.schema
    validator_value: Any = error.validator_value
    if validator == "additionalProperties" and isinstance(instance, dict):
        known = set(schema.get("properties", {}))
        out = []
        for key in sorted(set(instance) - known):
            message = f"unknown key `{key}` in {_where(path)}{did_you_mean(key, known)}"
            out.append(d.diagnostic(d.PT111, message, doc.span((*path, key), key=True)))
        return out
    if validator == "required":
        missing = [k for k in validator_value if k not in instance]
        return [
            d.diagnostic(
                d.PT111,
                f"{_where(path)} is missing the required key `{key}`",
                doc.span(path, key=True),
            )
            for key in missing
        ]
    if validator == "propertyNames":
        bad = next((k for k in instance if not re.match(r"^[A-Za-z_]\w*$", str(k))), None)
        if bad is not None:
            message = f"`{bad}` is not a valid name in {_where(path)} (letters, digits, `_`)"
            return [d.diagnostic(d.PT111, message, doc.span((*path, bad), key=True))]
    span = doc.span(path)
    shown = (
        json.dumps(instance) if not isinstance(instance, dict | list) else type(instance).__name__
    )
    if validator == "type":
        wanted = validator_value
        message = f"`{_where(path)}` must be {_article(wanted)}, not `{shown}`"
    elif validator == "enum":
        options = ", ".join(f"`{o}`" for o in validator_value)
        message = f"`{_where(path)}` must be one of {options}, not `{shown}`"
    elif validator == "pattern":
        message = f"`{shown}` is not a valid value for `{_where(path)}`"
    elif validator in ("minimum", "exclusiveMinimum"):
        message = f"`{_where(path)}` must be at least {validator_value}, not {shown}"
    elif validator == "oneOf":
        message = f"`{_where(path)}` has an unsupported value `{shown}`"
    elif validator in ("minItems", "minLength"):
        message = f"`{_where(path)}` must not be empty"
    else:
        message = f"`{_where(path)}`: {error.message}"
    return [d.diagnostic(d.PT111, message, span)]


def _article(kind: object) -> str:
    names = {"object": "a mapping", "array": "a list", "integer": "an integer"}
    if isinstance(kind, list):
        words = [_article(k) for k in kind]
        return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
    return names.get(str(kind), f"a {kind}")


# --- the policy model ---------------------------------------------------------------------

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


def build_spec(doc: Document) -> PolicySpec:
    """Validate ``doc`` against the schema and build the policy model. Raises PolicyError."""
    problems = validate_schema(doc)
    if problems:
        raise PolicyError(problems)
    data: dict[str, Any] = doc.data
    if data["api_version"] != API_VERSION:
        message = (
            f"unsupported api_version `{data['api_version']}` (this release reads `{API_VERSION}`)"
        )
        raise PolicyError([d.diagnostic(d.PT112, message, doc.span(("api_version",)))])

    def consts(section: str, value: Any, path: YamlPath) -> Any:
        try:
            return constant(value)
        except ValueError as exc:
            problems.append(d.diagnostic(d.PT308, f"`{_where(path)}`: {exc}", doc.span(path)))
            return value

    params = {k: consts("params", v, ("params", k)) for k, v in data.get("params", {}).items()}
    strategies: dict[str, dict[str, Const]] = {}
    for name, cfg in data.get("strategies", {}).items():
        attrs = {k: consts("strategies", v, ("strategies", name, k)) for k, v in cfg.items()}
        attrs.setdefault("enabled", True)
        strategies[name] = attrs
    symbols = {
        name: {k: consts("symbols", v, ("symbols", name, k)) for k, v in cfg.items()}
        for name, cfg in data.get("symbols", {}).items()
    }
    cohorts: dict[str, CohortSpec] = {}
    for name, cfg in data.get("cohorts", {}).items():
        if isinstance(cfg, list):
            cohorts[name] = CohortSpec(name, tuple(cfg))
        else:
            attrs = {k: consts("cohorts", v, ("cohorts", name, k)) for k, v in cfg.items()}
            members = attrs.pop("symbols")
            assert isinstance(members, list)
            cohorts[name] = CohortSpec(name, tuple(str(m) for m in members), attrs)
    modes = _modes(doc, data.get("modes", {"normal": {}}), problems)
    rules = tuple(_rule(doc, i, r, problems) for i, r in enumerate(data["rules"]))
    envelope = {
        k: ExprSource(_expr_text(doc, ("envelope", k)), ("envelope", k))
        for k in data.get("envelope", {})
    }
    min_risk_abs = consts("min_risk_abs", data.get("min_risk_abs", 0.0), ("min_risk_abs",))
    if problems:
        raise PolicyError(problems)
    return PolicySpec(
        path=doc.path,
        content_hash=doc.content_hash,
        api_version=data["api_version"],
        name=data["name"],
        version=data["version"],
        description=data.get("description", ""),
        params=params,
        strategies=strategies,
        symbols=symbols,
        cohorts=cohorts,
        modes=modes,
        rules=rules,
        envelope=envelope,
        reservation_ttl_sec=data.get("reservation_ttl_sec"),
        min_risk_abs=float(min_risk_abs),
    )


def _expr_text(doc: Document, path: YamlPath) -> str:
    node = doc.values[path]
    assert isinstance(node, yaml.ScalarNode)
    return str(node.value)


def _modes(doc: Document, raw: dict[str, Any], problems: list[Diagnostic]) -> dict[str, ModeSpec]:
    modes: dict[str, ModeSpec] = {}
    inherited: dict[str, Any] = {"risk_multiplier": 1.0, "flatten_only": False}
    for name in MODE_ORDER:
        if name not in raw:
            continue
        cfg = dict(raw[name])
        when_path = ("modes", name, "when")
        when_src = ExprSource(_expr_text(doc, when_path), when_path) if "when" in cfg else None
        cfg.pop("when", None)
        for k, v in list(cfg.items()):
            try:
                cfg[k] = constant(v)
            except ValueError as exc:
                where = ("modes", name, k)
                problems.append(d.diagnostic(d.PT308, f"`{_where(where)}`: {exc}", doc.span(where)))
                cfg[k] = 0.0
        merged = {**inherited, **cfg}
        attrs = {k: v for k, v in merged.items() if k not in ("risk_multiplier", "flatten_only")}
        modes[name] = ModeSpec(
            name=name,
            risk_multiplier=float(merged["risk_multiplier"]),
            flatten_only=bool(merged["flatten_only"]),
            when=when_src,
            attrs=attrs,
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
        code=raw.get("code", "rejected_" + re.sub(r"[^a-z0-9]+", "_", rule_id.lower()).strip("_")),
        message=text,
        description=raw.get("description"),
    )
