"""The decided order requests on Temporal: the control workflow's Updates and the client's
calls for ``request_cancel`` and ``request_modify`` (:mod:`policy_engine.control.requests`),
``request_group`` and ``cancel_group`` (:mod:`policy_engine.control.groups`), and
``update_balance`` (:mod:`policy_engine.control.balances`).

Kept here, not in ``workflow.py`` and ``client.py``: :class:`OrderUpdates` is a base of
:class:`~.workflow.PortfolioControlWorkflow` (Temporal collects the Updates of its bases)
and :class:`OrderCalls` one of :class:`~.client.PortfolioClient`. An Update's validator
parses the request with the core's own parser for the policy in force (its intent model:
which amounts a request may restate), so malformed input never enters history; the handler
takes the workflow lock and hands the typed event to the same shell as every other event.
The idempotency key is the request's content (it always carries its timestamp) or the
caller's ``request_id``; a retry gets its first outcome (:func:`~.memory.once`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from ..control.balances import parse_balance
from ..control.core import ControlCore
from ..control.events import Event, EventError, Record, check_intent_id, parse_timestamp
from ..control.fields import close_amounts
from ..control.orders import check_group_id
from ..control.shell import Handled
from . import protocol as p
from .memory import Answers, once


class OrderUpdates:
    """The control workflow's Updates for decided cancels and modifies (a base class)."""

    # the workflow's own (declared for the type checker; the workflow class defines them)
    _core: ControlCore
    _lock: asyncio.Lock
    answers: Answers  # (`once` reads it)
    _lifecycle: Callable[[Event], Awaitable[Record]]
    _take: Callable[..., Handled]
    _publish: Callable[..., Awaitable[None]]  # (forced envelope, changed=)

    def _order(self, request: dict[str, Any], kind: str) -> Event:
        """The typed request for the policy in force; EventError if malformed."""
        if not isinstance(request, dict):
            raise EventError(f"{kind}: expected an object, got {type(request).__name__}")
        return self._core.parse({**request, "type": kind})

    async def _decided(self, request: dict[str, Any], kind: str) -> Record:
        async with self._lock:  # a reload since the validator ran may refuse it now
            try:
                event = self._order(request, kind)
            except EventError as exc:
                raise ApplicationError(str(exc), type="EventError", non_retryable=True) from None
            return await self._lifecycle(event)

    @workflow.update(name=p.REQUEST_CANCEL)
    @once
    async def request_cancel(self, request: dict[str, Any]) -> Record:
        """Decide a cancel request (the cancel rules); returns its ``request_cancel`` record."""
        return await self._decided(request, "request_cancel")

    @request_cancel.validator
    def _check_request_cancel(self, request: dict[str, Any]) -> None:
        self._order(request, "request_cancel")

    @workflow.update(name=p.REQUEST_MODIFY)
    @once
    async def request_modify(self, request: dict[str, Any]) -> Record:
        """Decide a modify request (the modify rules; the intent rules too when it grows
        the order); returns its ``request_modify`` record."""
        return await self._decided(request, "request_modify")

    @request_modify.validator
    def _check_request_modify(self, request: dict[str, Any]) -> None:
        self._order(request, "request_modify")

    @workflow.update(name=p.REQUEST_GROUP)
    @once
    async def request_group(self, request: dict[str, Any]) -> Record:
        """Decide an order group all or none; returns the ``group`` record with every
        member's decision record (``decisions``)."""
        async with self._lock:
            try:
                event = self._order(request, "group")
            except EventError as exc:
                raise ApplicationError(str(exc), type="EventError", non_retryable=True) from None
            return await self._group(event)

    @request_group.validator
    def _check_request_group(self, request: dict[str, Any]) -> None:
        self._order(request, "group")

    async def _group(self, event: Event) -> Record:
        out, accepted = self._take(event)  # its members' records come before the group's
        if accepted:
            await self._publish(out.broadcast, changed=True)
        decisions = [r for r in out.records if r["kind"] == "decision"]
        return {**out.records[-1], "decisions": decisions}

    @workflow.update(name=p.CANCEL_GROUP)
    @once
    async def cancel_group(self, request: dict[str, Any]) -> Record:
        """Release the remainder of every live member of a group; its ``cancel_group`` record."""
        return await self._decided(request, "cancel_group")

    @cancel_group.validator
    def _check_cancel_group(self, request: dict[str, Any]) -> None:
        self._order(request, "cancel_group")

    @workflow.update(name=p.UPDATE_BALANCE)
    @once
    async def update_balance(self, request: dict[str, Any]) -> Record:
        """Record a currency's balance; its ``balance`` record (undeclared: not an event)."""
        return await self._decided(request, "balance")

    @update_balance.validator
    def _check_balance(self, request: dict[str, Any]) -> None:
        self._order(request, "balance")


class OrderCalls:
    """:class:`~.client.PortfolioClient`'s calls for decided cancels and modifies."""

    # the client's own (declared for the type checker; the client class defines them)
    _update: Callable[..., Awaitable[dict[str, Any]]]
    _counted: Callable[[Record], Record]

    async def request_cancel(
        self,
        intent_id: str,
        timestamp: datetime | str,
        *,
        request_id: str | None = None,
        **fields: Any,
    ) -> Record:
        """Ask to cancel ``intent_id``'s remainder (decided by the cancel rules);
        ``fields``: amounts the rules read (declared inputs)."""
        request = _request(intent_id, timestamp, fields)
        key = p.request_update_id(p.REQUEST_CANCEL, request, request_id)
        return self._counted(await self._update(p.REQUEST_CANCEL, request, key))

    async def request_modify(
        self,
        intent_id: str,
        requested_risk_abs: float,
        timestamp: datetime | str,
        *,
        request_id: str | None = None,
        **fields: Any,
    ) -> Record:
        """Ask to change ``intent_id``'s total risk (decided by the modify rules, and the
        intent rules when it grows); ``fields``: amounts the rules read (a declared price)."""
        if requested_risk_abs != 0:
            close_amounts(requested_risk_abs, None)  # refused here, without a round trip
        request = _request(intent_id, timestamp, fields)
        request["requested_risk_abs"] = requested_risk_abs
        key = p.request_update_id(p.REQUEST_MODIFY, request, request_id)
        return self._counted(await self._update(p.REQUEST_MODIFY, request, key))

    async def request_group(
        self, group_id: str, intents: list[dict[str, Any]], *, request_id: str | None = None
    ) -> Record:
        """Decide an order group all or none (a bracket, an order list); returns the
        ``group`` record with every member's decision record (``decisions``). The
        idempotency key is the group's content: a retry gets its first answer."""
        request = {"group_id": check_group_id(group_id), "intents": list(intents)}
        key = f"{p.REQUEST_GROUP}:{group_id}:{request_id or p.digest(request)}"
        return self._counted(await self._update(p.REQUEST_GROUP, request, key))

    async def cancel_group(
        self, group_id: str, timestamp: datetime | str, *, request_id: str | None = None
    ) -> Record:
        """Release the remainder of every live member of ``group_id``."""
        request = {
            "group_id": check_group_id(group_id),
            "timestamp": parse_timestamp(timestamp).isoformat(),
        }
        key = p.request_update_id(p.CANCEL_GROUP, request, request_id)
        return self._counted(await self._update(p.CANCEL_GROUP, request, key))

    async def update_balance(
        self,
        currency: str,
        free: float,
        locked: float = 0.0,
        timestamp: datetime | str | None = None,
        *,
        request_id: str | None = None,
    ) -> Record:
        """Report ``currency``'s balance before this portfolio's live reservations."""
        ts = None if timestamp is None else parse_timestamp(timestamp).isoformat()
        request = {"currency": currency, "free": free, "locked": locked, "timestamp": ts}
        parse_balance({**request, "type": "balance"})  # refused here, without a round trip
        key = p.request_update_id(p.UPDATE_BALANCE, request, request_id)
        return self._counted(await self._update(p.UPDATE_BALANCE, request, key))


def _request(intent_id: str, timestamp: datetime | str, fields: dict[str, Any]) -> Record:
    """The payload of a request, its head checked locally (the workflow checks the rest)."""
    check_intent_id(intent_id)
    ts = parse_timestamp(timestamp)
    return {**fields, "intent_id": intent_id, "timestamp": ts.isoformat()}


__all__ = ["OrderCalls", "OrderUpdates"]
