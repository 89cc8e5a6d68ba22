"""The instrument side: workflows that follow a portfolio's envelope and ask it for risk.

:class:`InstrumentWorkflow` is the base class of a per-symbol workflow (seed
004's ``InstrumentStrategyWorkflow``): :meth:`~InstrumentWorkflow.join` registers
with the portfolio's control workflow and waits for the first envelope, the
``constraint_envelope`` signal handler keeps the newest one (by the control
workflow's event number), :meth:`~InstrumentWorkflow.refusal` says whether the
envelope forbids an intent (flatten-only forbids entries; no position left
forbids a new trade), :meth:`~InstrumentWorkflow.request_allocation` asks the
authority through an activity (a workflow cannot call another workflow's
Update), and :meth:`~InstrumentWorkflow.leave` unregisters.

:class:`SymbolWorkflow` is the example: one symbol's loop, driven by ``propose``
Updates (a strategy would call them), that refuses what the envelope forbids
without asking and asks the authority for the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from ..engine.contracts import PortfolioConstraintEnvelope
from . import protocol as p

REQUEST_ACTIVITY = "policy_engine.request_allocation"


class InstrumentWorkflow:
    """Base class of a workflow that follows one portfolio's constraint envelope."""

    def __init__(self) -> None:
        self.portfolio = ""
        self.envelope_seq = -1
        self._envelope: dict[str, Any] | None = None

    # --- membership ----------------------------------------------------------------------
    async def join(self, portfolio: str) -> None:
        """Register with ``portfolio``'s control workflow; returns once its current
        envelope has arrived."""
        self.portfolio = portfolio
        await self._control().signal(p.REGISTER, workflow.info().workflow_id)
        await workflow.wait_condition(lambda: self._envelope is not None)

    async def leave(self) -> None:
        """Unregister: no more broadcasts to this workflow."""
        await self._control().signal(p.UNREGISTER, workflow.info().workflow_id)

    def _control(self) -> workflow.ExternalWorkflowHandle[Any]:
        return workflow.get_external_workflow_handle(p.workflow_id(self.portfolio))

    # --- the envelope --------------------------------------------------------------------
    @workflow.signal(name=p.ENVELOPE_SIGNAL)
    def receive_envelope(self, message: dict[str, Any]) -> None:
        """Keep the newest envelope (an older one arriving late is ignored)."""
        seq = int(message.get("seq", -1))
        if seq >= self.envelope_seq:
            self.envelope_seq = seq
            self._envelope = message["envelope"]

    @workflow.query(name="envelope")
    def current_envelope(self) -> dict[str, Any] | None:
        """The envelope this workflow holds, with the control workflow's event number."""
        if self._envelope is None:
            return None
        return {"seq": self.envelope_seq, "envelope": self._envelope}

    @property
    def envelope(self) -> PortfolioConstraintEnvelope | None:
        if self._envelope is None:
            return None
        return PortfolioConstraintEnvelope.model_validate(self._envelope)

    def refusal(self, intent: dict[str, Any]) -> str | None:
        """Why the envelope forbids ``intent`` (``None`` if it does not). Only the
        authority approves; this spares it requests it would refuse."""
        env = self._envelope
        if env is None:
            return "no envelope yet: not registered with the portfolio"
        if intent.get("side") == "flat" or intent.get("reduce_only"):
            return None  # risk-reducing: always worth asking
        if env.get("force_flatten_only"):
            return f"portfolio is {env.get('portfolio_mode')}: flatten-only"
        positions = env.get("max_additional_positions")
        if positions is not None and positions <= 0:
            return "no position left in the portfolio"
        return None

    async def request_allocation(self, intent: dict[str, Any]) -> dict[str, Any]:
        """Ask the portfolio's authority (an activity; retries keep the intent's id, so the
        authority decides it once)."""
        decision: dict[str, Any] = await workflow.execute_activity(
            REQUEST_ACTIVITY,
            args=[self.portfolio, intent],
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )
        return decision


# Continue as new past this many history events (or when Temporal suggests it): every
# envelope signal is history, so a long-lived instrument's history would grow without bound.
MAX_HISTORY = 10_000


@dataclass
class SymbolSpec:
    """What one symbol workflow trades, and for which portfolio (``carry``: the state a
    continue-as-new hands the next run)."""

    portfolio: str
    symbol: str
    strategy: str
    max_history: int = MAX_HISTORY
    carry: dict[str, Any] | None = None


def history_full(limit: int) -> bool:
    """Whether this run's history is long enough to continue as new."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit


@workflow.defn(name="SymbolWorkflow")
class SymbolWorkflow(InstrumentWorkflow):
    """The example instrument workflow: one symbol, driven by ``propose`` Updates."""

    @workflow.init
    def __init__(self, spec: SymbolSpec) -> None:
        super().__init__()
        self.spec = spec
        self.proposals = 0
        self.finished = False
        carry = spec.carry
        if carry is not None:  # a continued run: still registered, holding the envelope
            self.portfolio = spec.portfolio
            self.proposals = int(carry["proposals"])
            self.envelope_seq = int(carry["seq"])
            self._envelope = carry["envelope"]

    @workflow.run
    async def run(self, spec: SymbolSpec) -> dict[str, Any]:
        if spec.carry is None:
            await self.join(spec.portfolio)
        await workflow.wait_condition(lambda: self.finished or history_full(spec.max_history))
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not self.finished:  # registered by workflow id: the next run stays subscribed
            carry: dict[str, Any] = {"proposals": self.proposals, "seq": self.envelope_seq}
            carry["envelope"] = self._envelope
            workflow.continue_as_new(dataclasses.replace(spec, carry=carry))
        await self.leave()
        return {"symbol": spec.symbol, "proposals": self.proposals}

    @workflow.update(name="ready")
    async def ready(self) -> dict[str, Any] | None:
        """Returns once the workflow holds its first envelope."""
        await workflow.wait_condition(lambda: self._envelope is not None)
        return self.current_envelope()

    @workflow.update(name="propose")
    async def propose(self, trade: dict[str, Any]) -> dict[str, Any]:
        """Propose a trade (``side``, ``risk``, optional ``reduce_only``): refused here if
        the envelope forbids it, otherwise decided by the portfolio's authority."""
        self.proposals += 1
        intent = {
            "intent_id": f"{workflow.info().workflow_id}/{self.proposals}",
            "strategy": self.spec.strategy,
            "symbol": self.spec.symbol,
            "side": trade["side"],
            "requested_risk_abs": trade["risk"],
            "reduce_only": bool(trade.get("reduce_only", False)),
            "timestamp": workflow.now().isoformat(),
        }
        seen = self.envelope_seq
        reason = self.refusal(intent)
        if reason is not None:
            return {"intent_id": intent["intent_id"], "asked": False, "reason": reason, "seq": seen}
        decision = await self.request_allocation(intent)
        return {"intent_id": intent["intent_id"], "asked": True, "decision": decision, "seq": seen}

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.finished = True


__all__ = [
    "MAX_HISTORY",
    "REQUEST_ACTIVITY",
    "InstrumentWorkflow",
    "SymbolSpec",
    "SymbolWorkflow",
    "history_full",
]
