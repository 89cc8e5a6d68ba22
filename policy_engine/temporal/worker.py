"""Workers for the shared control plane: the sandbox runner, the worker, and ``serve``.

Workflows run in Temporal's default sandbox with its default restrictions.
``policy_engine`` is passed through (imported once, outside the sandbox) because
it is deterministic by construction: the control core does no I/O, reads no
clock and uses no randomness (tests/test_architecture.py enforces it), and
tests/test_temporal_replay.py replays the workflows with every ``policy_engine``
module re-imported and restricted by the sandbox. Passing it through spares
every workflow run (and every continue-as-new) a re-import of the package.

:func:`serve` is what ``policy worker`` runs: connect, poll the task queue,
start the portfolio's control workflow if it is not running, and run until
asked to stop. Given :class:`~policy_engine.control.metrics.ControlMetrics`, it
has them read the live state from the workflow at every scrape
(:func:`live_reader`): a Query, answered from the workflow's memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ..control.metrics import ControlMetrics
from ..control.scrape import Live, state_reader
from ..engine.policy import Policy, load_policy_text
from . import protocol as p
from .activities import AllocationActivities
from .client import ControlPlaneUnavailable, PortfolioClient, PortfolioNotRunning
from .instrument import SymbolWorkflow
from .ledger import ExecutionLedgerWorkflow
from .workflow import PortfolioControlWorkflow

WORKFLOWS: list[type] = [PortfolioControlWorkflow, SymbolWorkflow, ExecutionLedgerWorkflow]


def workflow_runner(*, passthrough: bool = True) -> SandboxedWorkflowRunner:
    """The default sandbox; ``passthrough`` imports ``policy_engine`` once outside it.
    PyYAML always passes through: its C loader builds nodes from classes it imported
    itself, which a sandboxed re-import would not recognise. One restriction is lifted:
    the one on ``zoneinfo.ZoneInfo`` (its ``clear_cache``, ``from_file`` and
    ``reset_tzpath``; we call only ``from_file``, on the pinned ``tzdata`` package's own
    zone files), which otherwise wraps every zone in a proxy that ``datetime`` refuses: a
    policy's ``timezone`` other than UTC needs real zones (deterministic: the same files on
    every machine)."""
    modules = ("policy_engine", "yaml", "_yaml") if passthrough else ("yaml", "_yaml")
    restrictions = SandboxRestrictions.default
    members = restrictions.invalid_module_members
    children = {k: v for k, v in members.children.items() if k != "zoneinfo"}
    restrictions = dataclasses.replace(
        restrictions, invalid_module_members=dataclasses.replace(members, children=children)
    )
    return SandboxedWorkflowRunner(restrictions=restrictions.with_passthrough_modules(*modules))


# What a worker hosts: everything (one task queue), or the authority and the instrument side
# on separate task queues (the instruments' workflows and the allocation activity scale on
# their own workers; the authority's queue only carries the control workflows).
HOSTS: dict[str, tuple[list[type], bool]] = {
    "all": (WORKFLOWS, True),
    "authority": ([PortfolioControlWorkflow], False),
    "instruments": ([SymbolWorkflow, ExecutionLedgerWorkflow], True),
}


def create_worker(
    client: Client,
    task_queue: str = p.DEFAULT_TASK_QUEUE,
    *,
    passthrough: bool = True,
    sticky_timeout: float = 5.0,
    hosts: str = "all",
    authority_queue: str | None = None,
    **options: Any,
) -> Worker:
    """A worker for the control workflow, the example instrument and ledger workflows and
    the allocation activity (``hosts="all"``), or only the authority (``"authority"``) or
    only the instrument side (``"instruments"``: its activity calls the authority on
    ``authority_queue``, default ``task_queue``). ``sticky_timeout`` is how long a task
    waits for this worker before any worker may take it (after a crash, the recovery
    time)."""
    if hosts not in HOSTS:
        raise ValueError(f"hosts is one of {', '.join(HOSTS)}, not {hosts!r}")
    workflows, with_activity = HOSTS[hosts]
    activities = AllocationActivities(client, authority_queue or task_queue)
    options.setdefault("graceful_shutdown_timeout", timedelta(seconds=5))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=[activities.request_allocation] if with_activity else [],
        workflow_runner=workflow_runner(passthrough=passthrough),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky_timeout),
        **options,
    )


@dataclass
class Served:
    """What :func:`serve` found or did when it started."""

    workflow_id: str
    started: bool  # False: the workflow was already running
    running_policy: dict[str, Any]  # name, version, hash of the policy in force


async def serve(
    address: str,
    policy: Policy,
    *,
    portfolio: str,
    equity: float | None,
    task_queue: str = p.DEFAULT_TASK_QUEUE,
    namespace: str = "default",
    stop: asyncio.Event,
    ready: Callable[[Served], None] = lambda _served: None,
    events_per_run: int = p.DEFAULT_EVENTS_PER_RUN,
    task_timeout: float | None = None,
    sticky_timeout: float = 5.0,
    metrics: ControlMetrics | None = None,
    resume: bool = False,
    new_portfolio: bool = False,
    startup_timeout: float = 60.0,
) -> None:
    """Run a worker until ``stop`` is set, starting ``portfolio``'s control workflow with
    ``equity`` if it is not running (``equity=None`` only serves a running one: a missing
    equity must not start a portfolio at zero, where every cap is zero). A portfolio
    whose last run was terminated or failed starts only with ``resume`` (from the state
    its history holds) or ``new_portfolio`` (its book discarded; see :mod:`.starting`).
    Start-up (start, then read the state) is retried while the server answers but the
    workflow does not yet (a dead worker's task must time out first), for up to
    ``startup_timeout`` seconds. Raises :class:`~.client.ControlPlaneUnavailable` when
    the server cannot be reached or start-up does not finish in time,
    :class:`~.client.PortfolioNotRunning` when there is nothing to serve and no equity,
    :class:`~.errors.PortfolioEnded` when the portfolio ended and neither flag is given."""
    caller = await PortfolioClient.connect(
        address, portfolio=portfolio, task_queue=task_queue, namespace=namespace
    )
    if metrics is not None:
        metrics.watch(live_reader(caller, asyncio.get_running_loop()))
    worker = create_worker(caller.client, task_queue, sticky_timeout=sticky_timeout)
    async with worker:
        end = time.monotonic() + startup_timeout
        while True:
            try:
                started = await _start(
                    caller, policy, equity, events_per_run, task_timeout, resume, new_portfolio
                )
                state = await caller.get_portfolio_state()
                break
            except ControlPlaneUnavailable:
                left = end - time.monotonic()
                if left <= 0:
                    raise
                # the server answers: the workflow waits for a dead worker's task to time out
                await asyncio.sleep(min(1.0, left))
        ready(Served(caller.workflow_id, started, dict(state["policy"])))
        await stop.wait()


async def _start(
    caller: PortfolioClient,
    policy: Policy,
    equity: float | None,
    events_per_run: int,
    task_timeout: float | None,
    resume: bool,
    new_portfolio: bool,
) -> bool:
    if equity is None and not resume:
        if not await caller.running():
            raise PortfolioNotRunning(
                f"{caller.workflow_id} is not running: give its opening equity "
                "(--equity) to start it"
            )
        return False
    return await caller.start(
        policy,
        equity=0.0 if equity is None else equity,
        events_per_run=events_per_run,
        task_timeout=task_timeout,
        resume=resume,
        new_portfolio=new_portfolio,
    )


def live_reader(
    caller: PortfolioClient, loop: asyncio.AbstractEventLoop, timeout: float = 5.0
) -> Callable[[], Live]:
    """Read the workflow's live state from another thread (a metrics scrape) through
    ``loop``: ``get_portfolio_state`` and the ledger's counts each time, the policy in
    force (for its caps) only when its hash changed (a reload), from the workflow's
    snapshot."""
    current: dict[str, Any] = {}
    policies: dict[str, Policy] = {}

    def call(query: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(query, loop).result(timeout)

    def portfolio_state() -> dict[str, Any]:
        state: dict[str, Any] = call(caller.get_portfolio_state())
        current["hash"] = state["policy"]["hash"]
        return state

    def policy() -> Policy:
        digest = current["hash"]
        if digest not in policies:
            snap = call(caller.snapshot())["policy"]
            policies.clear()  # only the policy in force is kept
            policies[digest] = load_policy_text(snap["source"], snap["path"])
        return policies[digest]

    def ledger() -> dict[str, int]:
        counts: dict[str, int] = call(caller.ledger())["counts"]
        return counts

    return state_reader(portfolio_state, policy, ledger)


__all__ = [
    "HOSTS",
    "WORKFLOWS",
    "Served",
    "create_worker",
    "live_reader",
    "serve",
    "workflow_runner",
]
