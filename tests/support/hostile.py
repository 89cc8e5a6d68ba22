"""Hostile inputs shared by the tests (which assert the behaviour) and benchmarks/hostile.py
(which times it): garbage files and hostile volumes, each built the same way in both."""

from __future__ import annotations


def garbage_inputs() -> dict[str, bytes]:
    """Files `policy-check` must answer with a PT diagnostic, never a crash."""
    header = "api_version: policy-engine/v1\nname: g\nversion: 1\nrules:\n  - id: a\n"
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 12):
        bomb += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    deep = "(" * 10_000 + "true" + ")" * 10_000
    short_deep = "not " * 1_000 + "true"
    return {
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "invalid-utf8": b"name: caf\xe9\n",
        "alias-bomb": bomb.encode(),
        "deep-expression": (header + f"    require: '{deep}'\n").encode(),
        "deep-not-chain": (header + f"    require: '{short_deep}'\n").encode(),
        "deep-yaml": b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        "five-mb": (header + "    require: 'true'\n# " + "x" * 5_000_000 + "\n").encode(),
        "only-a-list": b"- 1\n- 2\n",
        "tab-soup": b"\t\t:\t- ]]\n",
    }


HEADER = "api_version: policy-engine/v1\nname: hostile\nversion: 1\n"


def fmt_inputs() -> dict[str, str]:
    """Files `policy fmt` must refuse with the loader's diagnostic (its YAML library is
    recursive): nesting past the loader's limit, flow and block, and an oversized file."""
    return {
        "nested-flow-lists": HEADER + "params:\n  x: " + "[" * 1000 + "]" * 1000 + "\nrules: []\n",
        "nested-block-lists": HEADER + "params:\n  x:\n    " + "- " * 1000 + "1\nrules: []\n",
        "oversized": HEADER + "rules:\n  - id: a\n    require: 'true'\n# " + "x" * 1_200_000 + "\n",
    }


def many_inputs(n: int) -> str:
    """A policy declaring ``n`` inputs."""
    inputs = "".join(f"  in{i}: {{type: number, default: 0}}\n" for i in range(n))
    return HEADER + "inputs:\n" + inputs + "rules:\n  - id: a\n    require: 'true'\n"


def unknown_keys(n: int) -> str:
    """One rule with ``n`` keys the schema does not know."""
    keys = "".join(f"    k{i}: 1\n" for i in range(n))
    return HEADER + "rules:\n  - id: a\n    require: 'true'\n" + keys


def slow_parser_expressions(n: int) -> str:
    """``n`` rules whose long expressions the fast parser leaves to Lark (a keyword glued to
    a name, `a innie`, which only Lark's contextual lexer splits)."""
    term = "intent.requested_risk_abs < 5 or "
    body = term * 110 + "intent.symbol innie"
    rules = "".join(f"  - id: r{i}\n    require: '{body}'\n" for i in range(n))
    return HEADER + "rules:\n" + rules


def unknown_placeholders(n: int) -> str:
    """One rule whose message holds ``n`` placeholders naming nothing (each a PT306)."""
    message = " ".join(["{x}"] * n)
    return HEADER + f"rules:\n  - id: a\n    require: 'true'\n    message: '{message}'\n"
