"""The shared control plane on Temporal: one durable authority per portfolio.

Seed 004's shape: many per-symbol instrument workflows submit intents to ONE
:class:`PortfolioControlWorkflow` (holding the pure
:class:`~policy_engine.control.core.ControlCore`), the execution ledger signals
fills and releases to it (:mod:`.ledger`), and it broadcasts constraint envelopes to every
registered :class:`InstrumentWorkflow`. :class:`PortfolioClient` mirrors the
in-process :class:`~policy_engine.PortfolioController`; ``policy worker`` runs a
worker (:func:`serve`).

Needs the ``temporal`` extra (``pip install 'policy-engine[temporal]'``); the rest
of the package does not. Names load on first use, so :mod:`.protocol` (pure) can
be imported without the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .activities import AllocationActivities
    from .client import (
        ControlPlaneError,
        ControlPlaneUnavailable,
        PortfolioClient,
        PortfolioNotRunning,
        RequestRefused,
    )
    from .instrument import InstrumentWorkflow, SymbolSpec, SymbolWorkflow
    from .ledger import ExecutionLedgerWorkflow
    from .protocol import DEFAULT_TASK_QUEUE, ControlStart, workflow_id
    from .worker import WORKFLOWS, Served, create_worker, serve, workflow_runner
    from .workflow import PortfolioControlWorkflow

_WHERE = {
    "AllocationActivities": "activities",
    "ControlPlaneError": "client",
    "ControlPlaneUnavailable": "client",
    "PortfolioClient": "client",
    "PortfolioNotRunning": "client",
    "RequestRefused": "client",
    "InstrumentWorkflow": "instrument",
    "SymbolSpec": "instrument",
    "SymbolWorkflow": "instrument",
    "ExecutionLedgerWorkflow": "ledger",
    "DEFAULT_TASK_QUEUE": "protocol",
    "ControlStart": "protocol",
    "workflow_id": "protocol",
    "WORKFLOWS": "worker",
    "Served": "worker",
    "create_worker": "worker",
    "serve": "worker",
    "workflow_runner": "worker",
    "PortfolioControlWorkflow": "workflow",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_TASK_QUEUE",
    "WORKFLOWS",
    "AllocationActivities",
    "ControlPlaneError",
    "ControlPlaneUnavailable",
    "ControlStart",
    "ExecutionLedgerWorkflow",
    "InstrumentWorkflow",
    "PortfolioClient",
    "PortfolioControlWorkflow",
    "PortfolioNotRunning",
    "RequestRefused",
    "Served",
    "SymbolSpec",
    "SymbolWorkflow",
    "create_worker",
    "serve",
    "workflow_id",
    "workflow_runner",
]
