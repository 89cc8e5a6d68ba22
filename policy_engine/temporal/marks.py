"""The control workflow's ``mark`` Update and the client's call (issue 23 item 4).

Kept apart from :mod:`.workflow` and :mod:`.client` (both near the module size limit) as two
mixins: :class:`MarkUpdates` gives :class:`~.workflow.PortfolioControlWorkflow` the Update
(its validator parses the payload with the core's own checks, so a malformed mark never
enters history; the handler stamps a missing timestamp with ``workflow.now()`` and takes it
through the workflow's shell like a fill), and :class:`MarkCalls` gives
:class:`~.client.PortfolioClient` :meth:`MarkCalls.mark`, checked locally first, with an
idempotency key (a caller's ``request_id``, else the mark's content: a mark re-sent after a
crash is the same mark, answered once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio import workflow

from ..control.events import Event, MarkEvent, Record, check_mark, optional_timestamp
from . import payloads
from . import protocol as p
from .memory import Answers, once


class MarkUpdates:
    """The ``mark`` Update of the control workflow (mixed into it)."""

    # the workflow's own (declared for the type checker; the workflow class defines them)
    answers: Answers
    _lock: asyncio.Lock
    _lifecycle: Callable[[Event], Awaitable[Record]]

    @workflow.update(name=p.MARK)
    @once
    async def mark(self, request: dict[str, Any]) -> Record:
        """A symbol's last price: its priced positions are revalued; returns the mark
        record (``positions``: how many)."""
        symbol, price, ts = payloads.mark(request)
        async with self._lock:
            return await self._lifecycle(MarkEvent(symbol, price, ts or workflow.now()))

    @mark.validator
    def _check_mark(self, request: dict[str, Any]) -> None:
        payloads.mark(request)


class MarkCalls:
    """:meth:`mark` of the portfolio client (mixed into it)."""

    # the client's own transport (declared for the type checker)
    _update: Callable[..., Awaitable[dict[str, Any]]]

    async def mark(
        self,
        symbol: str,
        price: float,
        timestamp: datetime | str | None = None,
        *,
        request_id: str | None = None,
    ) -> Record:
        """``symbol``'s last price (``timestamp`` None: the workflow's time); returns the
        mark record. EventError for a malformed symbol or price, before any call."""
        symbol, price = check_mark(symbol, price)
        ts = optional_timestamp(timestamp)
        request = {"symbol": symbol, "price": price, "timestamp": ts and ts.isoformat()}
        return await self._update(p.MARK, request, p.request_update_id(p.MARK, request, request_id))


__all__ = ["MarkCalls", "MarkUpdates"]
