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
