"""Controller cases of benchmarks/run.py: request_allocation, journal replay, memory."""

from __future__ import annotations

from typing import Any


def run(
    row: Any,
    fails: list[str],
    args: Any,
    rounds: int,
    target: float,
    ai: Any,
    asnap: Any,
    baseline: Any,
) -> None:
    row("request_allocation / replay", "todo", "", "")
