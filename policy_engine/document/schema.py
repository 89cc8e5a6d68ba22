"""JSON Schema validation of a policy document, with messages a risk owner can act on.

The schema is ``schemas/policy.schema.json`` (2020-12), published for editors;
jsonschema validates against it and every error becomes a positioned PT111
diagnostic (unknown keys with did-you-mean, wrong types, missing keys).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema

from .. import diagnostics as d
from ..diagnostics import Diagnostic, suggest
from .model import YamlPath
from .yaml_source import Document


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


def path_text(path: YamlPath) -> str:
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
            message = f"unknown key `{key}` in {path_text(path)}"
            where = doc.span((*path, key), key=True)
            out.append(d.diagnostic(d.PT111, message, where, suggest(key, known)))
        return out
    if validator == "required":
        missing = [k for k in validator_value if k not in instance]
        return [
            d.diagnostic(
                d.PT111,
                f"{path_text(path)} is missing the required key `{key}`",
                doc.span(path, key=True),
            )
            for key in missing
        ]
    if validator == "propertyNames":
        bad = next((k for k in instance if not re.match(r"^[A-Za-z_]\w*$", str(k))), None)
        if bad is not None:
            message = f"`{bad}` is not a valid name in {path_text(path)} (letters, digits, `_`)"
            return [d.diagnostic(d.PT111, message, doc.span((*path, bad), key=True))]
    span = doc.span(path)
    shown = (
        json.dumps(instance) if not isinstance(instance, dict | list) else type(instance).__name__
    )
    if validator == "type":
        wanted = validator_value
        message = f"`{path_text(path)}` must be {_article(wanted)}, not `{shown}`"
    elif validator == "enum":
        options = ", ".join(f"`{o}`" for o in validator_value)
        message = f"`{path_text(path)}` must be one of {options}, not `{shown}`"
    elif validator == "pattern":
        message = f"`{shown}` is not a valid value for `{path_text(path)}`"
    elif validator in ("minimum", "exclusiveMinimum"):
        message = f"`{path_text(path)}` must be at least {validator_value}, not {shown}"
    elif validator == "oneOf":
        message = f"`{path_text(path)}` has an unsupported value `{shown}`"
    elif validator in ("minItems", "minLength"):
        message = f"`{path_text(path)}` must not be empty"
    else:
        message = f"`{path_text(path)}`: {error.message}"
    return [d.diagnostic(d.PT111, message, span)]


def _article(kind: object) -> str:
    names = {"object": "a mapping", "array": "a list", "integer": "an integer"}
    if isinstance(kind, list):
        words = [_article(k) for k in kind]
        return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
    return names.get(str(kind), f"a {kind}")


def schema_error_paths(doc: Document) -> list[YamlPath]:
    """Where the document fails the schema: the YAML path of every violation (an unknown
    key's own path, not its parent's), for checking what validated despite the rest."""
    paths: list[YamlPath] = []
    for error in _validator().iter_errors(doc.data):
        path: YamlPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            paths.extend((*path, key) for key in sorted(set(error.instance) - known))
        else:
            paths.append(path)
    return paths
