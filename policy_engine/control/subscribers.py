"""The subscribers of a controller: instrument workflows in the same process.

Each gets the current envelope when it subscribes and every broadcast after;
a failing subscriber is logged and never stops the others (nor the decision
that caused the broadcast).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..engine.contracts import PortfolioConstraintEnvelope

logger = logging.getLogger("policy_engine")

Subscriber = Callable[[PortfolioConstraintEnvelope], None]


class Subscribers:
    """Callbacks by token, in subscription order. The caller holds its own lock."""

    def __init__(self) -> None:
        self._callbacks: dict[int, Subscriber] = {}
        self._next_token = 0

    def add(self, callback: Subscriber) -> int:
        token = self._next_token
        self._next_token += 1
        self._callbacks[token] = callback
        return token

    def remove(self, token: int) -> None:
        self._callbacks.pop(token, None)

    def send(self, env: PortfolioConstraintEnvelope, only: Subscriber | None = None) -> None:
        """Push ``env`` to every subscriber (or to ``only``); failures are logged."""
        for callback in [only] if only is not None else list(self._callbacks.values()):
            try:
                callback(env)
            except Exception:
                logger.exception("constraint subscriber %r failed", callback)

    def __len__(self) -> int:
        return len(self._callbacks)


__all__ = ["Subscriber", "Subscribers"]
