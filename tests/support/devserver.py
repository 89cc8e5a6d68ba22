"""The tests' Temporal dev server: the package's own helper (policy_engine.temporal.devserver)."""

from __future__ import annotations

from policy_engine.temporal.devserver import dev_server, free_port, temporal_binary

__all__ = ["dev_server", "free_port", "temporal_binary"]
