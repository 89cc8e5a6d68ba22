"""The control workflow's subscribers: the instrument workflows that hold its envelope.

:class:`Broadcaster` is the workflow's collaborator for them: the ordered set of
registered workflow ids, the envelope they all hold, and the delivery of a new one
(signals sent concurrently, each awaited, so a mode change, override or reload is
held by every subscriber before the workflow's lock is released and the next
decision is made). A subscriber whose signal fails is unregistered. Runs inside the
workflow (deterministic: insertion order only).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

from . import protocol as p


class Broadcaster:
    """The registered instrument workflows and the envelope they hold."""

    def __init__(
        self,
        portfolio: str,
        subscribers: list[str] | None = None,
        pushed: dict[str, Any] | None = None,
    ) -> None:
        self.portfolio = portfolio
        self.subscribers: dict[str, None] = dict.fromkeys(subscribers or [])  # an ordered set
        self.pushed = pushed  # the envelope every subscriber holds

    async def publish(self, env: dict[str, Any], seq: int, *, force: bool) -> None:
        """Give every subscriber ``env``: always with ``force``, else only if it differs
        from the one they hold."""
        if not force and (not self.subscribers or env == self.pushed):
            return
        self.pushed = env
        await self.send(list(self.subscribers), env, seq)

    async def register(self, workflow_id: str, env: dict[str, Any], seq: int) -> None:
        """Subscribe ``workflow_id``; it gets ``env`` at once (everyone does if it is new)."""
        self.subscribers[workflow_id] = None
        if env != self.pushed:  # the others hold an older one: everyone gets this
            self.pushed = env
            await self.send(list(self.subscribers), env, seq)
        else:
            await self.send([workflow_id], env, seq)

    def unregister(self, workflow_id: str) -> None:
        self.subscribers.pop(workflow_id, None)

    async def send(self, targets: list[str], env: dict[str, Any], seq: int) -> None:
        """Signal ``targets`` and wait until every signal is delivered; a workflow that is
        gone is unregistered."""
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
            if isinstance(result, BaseException):
                self.subscribers.pop(target, None)
                workflow.logger.warning(
                    "unregistered %s: envelope not delivered: %s", target, result
                )

    def carry(self) -> dict[str, Any]:
        return {"subscribers": list(self.subscribers), "pushed": self.pushed}


__all__ = ["Broadcaster"]
