"""Completion, hover and the outline: pure functions of one :class:`~.index.Analysis`.

Names and their types come from the policy's symbol table
(:class:`~policy_engine.document.names.Scope`), functions from the function table, YAML
keys from the policy's JSON Schema: nothing here knows a name the checker does not.
"""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types as lsp

from ..document.model import PolicySpec, RuleSpec
from ..document.names import NAMESPACES, Ref
from ..document.schema import policy_schema
from ..lang.functions import FUNCTIONS, Function
from ..lang.valuetypes import type_of
from .index import RULE_EXPRESSION_KEYS, Analysis

_AFTER_DOT = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$")
_KEY_LINE = re.compile(r"^(\s*)(-\s+)?([A-Za-z_][\w-]*)\s*:(\s|$)")
_VALUE_AT = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w-]*)\s*:\s")
_EXPRESSION_VALUE_KEYS = frozenset({*RULE_EXPRESSION_KEYS, "message"})


def signature(fn: Function) -> str:
    """``name(a, b[, c])`` from the function's arity (``min(x, ...)`` for any number)."""
    names = ["x", "a", "b", "c", "d"]
    args = names[: fn.min_args] if fn.min_args > 1 else ["x"][: fn.min_args]
    if fn.max_args is None:
        return f"{fn.name}({', '.join([*args, '...'])})"
    optional = [f"arg{i + 1}" for i in range(fn.min_args, fn.max_args)]
    shown = ", ".join(args) + "".join(f"[, {o}]" for o in optional)
    return f"{fn.name}({shown})"


# --- completion -------------------------------------------------------------------------------
def completion(a: Analysis, line: int, col: int) -> list[lsp.CompletionItem]:
    before = a.lines.line(line)[:col]
    after_dot = _AFTER_DOT.search(before)
    if after_dot is not None and _in_expression(a, line, before):
        return _fields(a, after_dot.group(1))
    if _in_expression(a, line, before):
        return _expression_items(a)
    if ":" in before.split("#")[0]:
        return []  # a plain value: nothing to offer
    return _yaml_keys(a, line, before)


def _in_expression(a: Analysis, line: int, before: str) -> bool:
    m = _VALUE_AT.match(before)
    if m is None:
        return False
    if m.group(2) in _EXPRESSION_VALUE_KEYS:
        return True
    return _parents(a, line, len(m.group(1)))[:1] == ["envelope"]


def _fields(a: Analysis, prefix: str) -> list[lsp.CompletionItem]:
    path = tuple(prefix.split("."))
    scope = a.scope
    if len(path) == 1:
        fields = scope.fields(path[0])
    else:
        found = scope.resolve(path)
        if not isinstance(found, Ref) or found.type.fields is None:
            return []
        fields = dict(found.type.fields)
    return [
        lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Field, detail=str(kind))
        for name, kind in fields.items()
    ]


def _expression_items(a: Analysis) -> list[lsp.CompletionItem]:
    scope = a.scope
    items = [
        lsp.CompletionItem(label=ns, kind=lsp.CompletionItemKind.Module, detail="namespace")
        for ns in (*NAMESPACES, *scope.scopes)
    ]
    for ns in (*NAMESPACES, *scope.scopes):
        if ns in ("intent", "portfolio", "strategy", "symbol", "cohort", "mode"):
            continue  # their fields come after the dot; declared names are listed whole
        for name, kind in scope.fields(ns).items():
            items.append(
                lsp.CompletionItem(
                    label=f"{ns}.{name}", kind=lsp.CompletionItemKind.Variable, detail=str(kind)
                )
            )
    for per, windows in scope.windows.items():
        items += [
            lsp.CompletionItem(label=f"{per}.{w}", kind=lsp.CompletionItemKind.Variable)
            for w in windows
            if per not in scope.scopes
        ]
    items += [
        lsp.CompletionItem(
            label=f"intent.{name}", kind=lsp.CompletionItemKind.Variable, detail=str(kind)
        )
        for name, kind in scope.inputs.items()
    ]
    for fn in FUNCTIONS.values():
        items.append(
            lsp.CompletionItem(
                label=fn.name,
                kind=lsp.CompletionItemKind.Function,
                detail=signature(fn),
                documentation=fn.summary,
            )
        )
    for named in ("mode", "cohort", "strategy"):
        # the model's modes: a policy without `modes:` still has `normal`
        names = a.spec.modes if named == "mode" and a.spec is not None else a.declared(named)
        items += [
            lsp.CompletionItem(
                label=f'"{name}"', kind=lsp.CompletionItemKind.EnumMember, detail=named
            )
            for name in names
        ]
    return items


def _parents(a: Analysis, line: int, indent: int) -> list[str]:
    """The YAML keys above ``line`` that hold a key written at column ``indent``
    (``[]`` stands for a list item): ``["rules", "[]"]`` inside a rule."""
    path: list[str] = []
    for index in range(line - 1, -1, -1):
        if indent == 0:
            break
        text = a.lines.line(index)
        stripped = text.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        at = len(text) - len(stripped)
        if stripped.startswith("- "):
            content = at + 2 + len(stripped[2:]) - len(stripped[2:].lstrip())
            if content == indent:
                path.append("[]")
                indent = at
                continue
        if at < indent:
            m = _KEY_LINE.match(text)
            if m is None:
                break
            path.append(m.group(3))
            indent = at
    return list(reversed(path))


def _schema_at(path: list[str]) -> dict[str, Any]:
    schema = policy_schema()
    defs = schema.get("$defs", {})
    node: dict[str, Any] = schema
    for part in path:
        node = _deref(node, defs)
        if part == "[]":
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            extra = node.get("additionalProperties")
            node = extra if isinstance(extra, dict) else {}
    return _deref(node, defs)


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
    return node


def _yaml_keys(a: Analysis, line: int, before: str) -> list[lsp.CompletionItem]:
    stripped = before.lstrip()
    indent = len(before) - len(stripped)
    path: list[str] = []
    if stripped.startswith("- "):
        path, indent = ["[]"], indent
    elif stripped and not re.fullmatch(r"[\w-]*", stripped):
        return []
    path = _parents(a, line, indent) + path
    props = _schema_at(path).get("properties", {})
    return [
        lsp.CompletionItem(
            label=key,
            kind=lsp.CompletionItemKind.Property,
            detail=str(spec.get("description", ""))[:80] or None,
            insert_text=f"{key}: ",
        )
        for key, spec in props.items()
    ]


# --- hover ------------------------------------------------------------------------------------
def hover(a: Analysis, line: int, col: int) -> lsp.Hover | None:
    """A name's type and value, a function's signature, a rule's meaning; on a declared name
    (its declaration, or a mode compared by name) what the policy declares it to be."""
    token = a.lines.dotted_at(line, col)
    answer = _hover_token(a, line, token) if token is not None else None
    if answer is not None:
        return answer
    found = a.at(line, col)
    if found is None or a.spec is None:
        return None
    shown = declared_meaning(a.spec, found.kind, found.name)
    if shown is None:
        return None
    return _markdown(shown, a.lines.range(found.line, found.col, found.line, found.end))


def declared_meaning(spec: PolicySpec, kind: str, name: str) -> str | None:
    """What the policy declares ``name`` (a ``kind``) to be, in one line."""
    if kind == "param" and name in spec.params:
        return f"`params.{name}`: `{type_of(spec.params[name])} = {_constant(spec.params[name])}`"
    if kind == "mode" and name in spec.modes:
        m = spec.modes[name]
        when = f", when `{m.when.text.strip()}`" if m.when is not None else ""
        only = ", flatten only" if m.flatten_only else ""
        return f"mode `{name}`: risk x {_constant(m.risk_multiplier)}{only}{when}"
    if kind == "cohort" and name in spec.cohorts:
        return f"cohort `{name}`: {', '.join(spec.cohorts[name].symbols)}"
    if kind in ("strategy", "symbol"):
        configs = spec.strategies if kind == "strategy" else spec.symbols
        cfg = configs.get(name, {})
        shown = ", ".join(f"{k}: {_constant(v)}" for k, v in cfg.items())
        return f"{kind} `{name}`" + (f": {shown}" if shown else "")
    if kind == "window" and name in spec.windows:
        w = spec.windows[name]
        return f"window `{w.per}.{name}`: {w.count} per {w.per} in the last {w.over} s"
    if kind == "latch" and name in spec.latches:
        latch = spec.latches[name]
        return f"latch `latch.{name}`: set when `{latch.when.text.strip()}`, until {latch.until}"
    if kind == "scope" and name in spec.scopes:
        sc = spec.scopes[name]
        key = ", ".join(f"intent.{f}" for f in sc.key_fields)
        return f"scope `{name}`: a bucket per `{key}` ({', '.join(sc.values)})"
    if kind == "input" and name in spec.inputs:
        i = spec.inputs[name]
        default = (
            "required"
            if i.required
            else "optional, absent unless sent"
            if i.default is None
            else f"default {_constant(i.default)}"
        )
        return f"input `intent.{name}`: `{i.type}`, {default}"
    return None


def _hover_token(a: Analysis, line: int, token: tuple[str, int, int]) -> lsp.Hover | None:
    rule = _rule_at(a, line)
    text, start, end = token
    where = a.lines.range(line, start, line, end)
    before = a.lines.line(line)[:start]
    if rule is not None and re.match(r"^\s*(-\s+)?id\s*:\s*$", before):
        return _markdown(rule_meaning(rule), where)
    fn = FUNCTIONS.get(text)
    rest = a.lines.line(line)[end:].lstrip()
    if fn is not None and rest.startswith("("):
        return _markdown(f"`{signature(fn)}`\n\n{fn.summary}", where)
    path = tuple(text.split("."))
    if len(path) < 2:
        return None
    found = a.scope.resolve(path)
    if not isinstance(found, Ref):
        return None
    shown = f"`{text}`: `{found.type}"
    if path[0] == "params" and a.spec is not None:
        value: Any = a.spec.params.get(path[1])
        for part in path[2:]:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            shown += f" = {_constant(value)}"
    return _markdown(shown + "`", where)


def _constant(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _markdown(text: str, where: lsp.Range) -> lsp.Hover:
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text), range=where
    )


def _rule_at(a: Analysis, line: int) -> RuleSpec | None:
    if a.spec is None or a.doc is None:
        return None
    for rule in a.spec.rules:
        node = a.doc.values.get(rule.path)
        if node is not None and node.start_mark.line <= line < max(
            node.end_mark.line, node.start_mark.line + 1
        ):
            return rule
    return None


def rule_meaning(rule: RuleSpec) -> str:
    """A rule in one line: what it checks and what it decides."""
    expr = rule.expr.text.strip()
    when = f"when `{rule.when.text.strip()}`, " if rule.when is not None else ""
    shadow = " (warn only)" if rule.enforcement == "warn" else ""
    if rule.kind == "allow":
        what = f"approves at once if `{expr}`"
    elif rule.kind == "require":
        what = f"rejects with `{rule.code}` unless `{expr}`"
    else:
        verb = "clips the risk to" if rule.on_exceed == "clip" else "rejects above"
        what = f"{verb} `{expr}` (`{rule.code}` when nothing is left)"
    return f"rule `{rule.id}` ({rule.category}){shadow}: {when}{what}"


# --- outline ----------------------------------------------------------------------------------
def document_symbols(a: Analysis) -> list[lsp.DocumentSymbol]:
    """Params, modes and rules, each under its section."""
    if a.doc is None:
        return []
    out: list[lsp.DocumentSymbol] = []
    for section, named, kind in (
        ("params", "param", lsp.SymbolKind.Constant),
        ("modes", "mode", lsp.SymbolKind.EnumMember),
    ):
        children = [
            _symbol(a, name, kind, (section, name), a.data[section][name])
            for name in a.declared(named)
        ]
        if children:
            out.append(_section(a, section, children))
    rules = a.data.get("rules")
    children = []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict):
            name = str(rule.get("id", f"rules[{i}]"))
            detail = next((k for k in RULE_EXPRESSION_KEYS[:3] if k in rule), None)
            children.append(_symbol(a, name, lsp.SymbolKind.Function, ("rules", i), detail))
    if children:
        out.append(_section(a, "rules", children))
    return out


def _node_range(a: Analysis, path: tuple[str | int, ...], key: bool) -> lsp.Range:
    assert a.doc is not None
    node = (a.doc.keys if key else a.doc.values).get(path) or a.doc.values.get(path)
    if node is None:
        return a.lines.range(0, 0, 0, 0)
    start, end = node.start_mark, node.end_mark
    return a.lines.range(start.line, start.column, end.line, end.column)


def _symbol(
    a: Analysis, name: str, kind: lsp.SymbolKind, path: tuple[str | int, ...], detail: Any
) -> lsp.DocumentSymbol:
    selection = _node_range(a, path, key=True)
    whole = _node_range(a, path, key=False)
    if (whole.start.line, whole.start.character) > (
        selection.start.line,
        selection.start.character,
    ):
        whole = lsp.Range(start=selection.start, end=whole.end)
    shown = None if detail is None or isinstance(detail, dict) else str(detail)
    return lsp.DocumentSymbol(
        name=name, kind=kind, range=whole, selection_range=selection, detail=shown
    )


def _section(a: Analysis, section: str, children: list[lsp.DocumentSymbol]) -> lsp.DocumentSymbol:
    key = _node_range(a, (section,), key=True)
    end = children[-1].range.end
    return lsp.DocumentSymbol(
        name=section,
        kind=lsp.SymbolKind.Namespace,
        range=lsp.Range(start=key.start, end=end),
        selection_range=key,
        children=children,
    )


__all__ = ["completion", "document_symbols", "hover", "rule_meaning", "signature"]
