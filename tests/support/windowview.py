"""What every bucket's windows show, by namespace and key: the format-10 window fixture
records it with the release that wrote it (tests/fixtures/snapshots/windows10.py) and the
migration test compares a migrated core with it."""

from __future__ import annotations

from typing import Any

from policy_engine.control.core import ControlCore


def shown(core: ControlCore) -> dict[str, Any]:
    """Every bucket's window values, by namespace and key."""
    state = core.state
    tables = {"strategy": state.strategies, "symbol": state.symbols, "cohort": state.cohorts}
    tables.update({f"scope:{n}": t for n, t in state.scopes.items()})
    out = {"portfolio": dict(state.windows)}
    for name, table in tables.items():
        for key, bucket in sorted(table.items()):
            if bucket.windows:
                out[f"{name}:{key}"] = dict(sorted(bucket.windows.items()))
    return out
