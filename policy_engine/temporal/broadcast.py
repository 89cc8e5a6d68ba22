"""The control workflow's subscribers: the instrument workflows that hold its envelope.

:class:`Broadcaster` is the workflow's collaborator for them: the ordered set of
registered workflow ids, the envelope they all hold, and two ways to deliver a new
one:

- :meth:`~Broadcaster.publish` (a mode change, an override, a reload, a drawdown tier,
  an explicit ``broadcast_constraints``): signals sent concurrently and each
  awaited under the workflow's lock, so every subscriber holds it before the next
  decision is made. It supersedes any envelope still waiting below.
- :meth:`~Broadcaster.changed` (fills, cancels, closes, expiries move the headroom):
  only the latest envelope is kept (coalesced, latest wins) and :meth:`deliver`, a
  task beside the decisions, sends it outside the lock, at most once per
  :data:`COALESCE_WINDOW`: a decision never waits for it. Instrument workflows keep the newest envelope by the authority's event number,
  so an older one arriving late never replaces a newer one.

A subscriber whose signal fails because its workflow is gone (completed, failed,
terminated, never existed) is unregistered; any other failure (a transient one)
keeps it registered and it gets the newest envelope again after a short timer.
Runs inside the workflow: deterministic (insertion order, workflow timers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow

from . import protocol as p

RETRY_AFTER = timedelta(seconds=2)  # a transient delivery failure is retried this late
# After a coalesced delivery the next waits this long (a workflow timer), so a burst of fills
# and closes costs one delivery per window, not one per event (each is a signal per
# subscriber in history). An instrument's envelope is at most this stale on headroom; mode
# changes, overrides and reloads never wait for it.
COALESCE_WINDOW = timedelta(milliseconds=250)
# What the server (through the SDK) says when a signalled workflow is closed or never
# existed: "Unable to signal external workflow because it was not found".
_GONE = ("not found", "already completed", "already finished")


def gone(error: BaseException) -> bool:
    """Whether a failed envelope signal means its workflow is gone for good (unregister it)
    rather than a failure that may pass (keep it and send again): only the words a closed
    or missing workflow is reported with count, so anything else (the per-workflow signal
    limit, a timeout, an internal error) keeps the subscriber."""
    said = str(error).lower()
    return any(word in said for word in _GONE)


class Broadcaster:
    """The registered instrument workflows and the envelope they hold."""

    def __init__(
        self,
        portfolio: str,
        subscribers: list[str] | None = None,
        pushed: dict[str, Any] | None = None,
        missed: list[str] | None = None,
        latest: list[Any] | None = None,
    ) -> None:
        self.portfolio = portfolio
        self.subscribers: dict[str, None] = dict.fromkeys(subscribers or [])  # an ordered set
        self.pushed = pushed  # the envelope every subscriber holds (or is being sent)
        self.pushed_seq = -1  # its event number (after a continue-as-new: not known, -1)
        # waiting for `deliver` (a run that continued as new before sending it carries it)
        self._latest: tuple[dict[str, Any], int] | None = (
            None if latest is None else (latest[0], int(latest[1]))
        )
        # a transient failure: send again later (carried across continue-as-new)
        self._missed: dict[str, None] = dict.fromkeys(missed or [])
        self._sending = 0  # deliveries in flight outside the lock

    # --- the two ways in ------------------------------------------------------------------
    async def publish(self, env: dict[str, Any], seq: int) -> None:
        """Every subscriber holds ``env`` when this returns (or its workflow is gone)."""
        self._latest = None  # superseded: this is the current envelope
        self.pushed, self.pushed_seq = env, seq
        await self.send(list(self.subscribers), env, seq)

    def changed(self, env: dict[str, Any], seq: int) -> None:
        """``env`` is the current envelope after a lifecycle event: delivered by
        :meth:`deliver` (latest wins) unless the subscribers already hold it."""
        if not self.subscribers:
            return
        if env == self.pushed:
            self._latest = None
            return
        self._latest = (env, seq)

    async def register(self, workflow_id: str, env: dict[str, Any], seq: int) -> None:
        """Subscribe ``workflow_id``; it gets ``env`` at once (everyone does if it is new)."""
        self.subscribers[workflow_id] = None
        if env != self.pushed:  # the others hold an older one: everyone gets this
            await self.publish(env, seq)
        else:
            await self.send([workflow_id], env, seq)

    def unregister(self, workflow_id: str) -> None:
        self.subscribers.pop(workflow_id, None)
        self._missed.pop(workflow_id, None)

    # --- delivery ---------------------------------------------------------------------------
    async def deliver(self) -> None:
        """Forever (the workflow's run starts it): send the latest coalesced envelope to
        every subscriber, and the held one again to those a transient failure missed."""
        while True:
            await workflow.wait_condition(lambda: self._latest is not None or bool(self._missed))
            latest = self._latest
            if latest is not None:
                self._latest = None
                env, seq = latest
                self.pushed, self.pushed_seq = env, seq
                await self._outside(list(self.subscribers), env, seq)
                await workflow.sleep(COALESCE_WINDOW)
                continue
            await workflow.sleep(RETRY_AFTER)
            missed, self._missed = list(self._missed), {}
            if self.pushed is not None:
                await self._outside(missed, self.pushed, self.pushed_seq)

    async def _outside(self, targets: list[str], env: dict[str, Any], seq: int) -> None:
        self._sending += 1
        try:
            await self.send(targets, env, seq)
        finally:
            self._sending -= 1

    def ready(self, carry_latest: bool) -> Callable[[], bool]:
        """What a continue-as-new waits for: no signal in flight; the envelope still waiting
        for :meth:`deliver` is carried to the next run, which sends it first. Waiting for it
        to be sent could put the continue-as-new off for as long as fills and closes keep
        coming, and the history would grow without bound. Runs recorded before
        (``carry_latest`` false: not patched) waited for it."""
        if carry_latest:
            return lambda: self._sending == 0
        return lambda: self._latest is None and self._sending == 0

    async def send(self, targets: list[str], env: dict[str, Any], seq: int) -> None:
        """Signal ``targets`` and wait until every signal is delivered."""
        if not targets:
            return
        message = {"portfolio": self.portfolio, "seq": seq, "envelope": env}
        sent = await asyncio.gather(
            *(
                workflow.get_external_workflow_handle(target).signal(p.ENVELOPE_SIGNAL, message)
                for target in targets
            ),
            return_exceptions=True,
        )
        for target, result in zip(targets, sent, strict=True):
            if not isinstance(result, BaseException) or target not in self.subscribers:
                continue
            if gone(result):
                self.unregister(target)
                workflow.logger.warning("unregistered %s: its workflow is gone: %s", target, result)
            else:
                self._missed[target] = None
                workflow.logger.warning(
                    "envelope not delivered to %s (retried): %s", target, result
                )

    @classmethod
    def restore(cls, portfolio: str, carry: dict[str, Any]) -> Broadcaster:
        """The broadcaster a previous run's :meth:`carry` describes."""
        return cls(
            portfolio,
            carry["subscribers"],
            carry["pushed"],
            carry.get("missed"),
            carry.get("latest"),
        )

    def carry(self) -> dict[str, Any]:
        return {
            "subscribers": list(self.subscribers),
            "pushed": self.pushed,
            "missed": list(self._missed),
            "latest": None if self._latest is None else list(self._latest),
        }


__all__ = ["COALESCE_WINDOW", "RETRY_AFTER", "Broadcaster", "gone"]
