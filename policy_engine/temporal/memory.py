"""The control workflow's idempotency memory: what it answered, carried across continue-as-new.

Temporal deduplicates a repeated Update id only within one run, so a retry that lands
after a continue-as-new would apply a second time (a partial close twice, an equity
drop twice). :class:`Answers` is the shell's memory of its answers, carried in
``ControlStart.carry`` from run to run:

- ``decisions``: intent id -> (content hash, decision). The last ``limit`` decisions,
  and beyond that every decision whose trade is still live (the trade holds a
  reservation a retry must not see refused), so a retry of a live trade always gets its
  original decision.
- ``outcomes``: Update id -> the first outcome of every other mutating call (close,
  cancel, fill, equity, mode, latch reset, reload, broadcast), the last
  :data:`OUTCOMES_KEPT`: a retry with the same id gets that outcome, never a second
  application.

Deterministic (insertion order only): it runs inside the workflow. :func:`once` is the
decorator that gives a mutating Update handler this memory.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from temporalio import workflow

from . import protocol as p

# Retries come within a caller's deadline (30 s by default): the last few hundred mutating
# calls cover any plausible retry while keeping the carried payload small (each outcome is
# a record of ~1 KB before compression; Temporal refuses payloads over 2 MB).
OUTCOMES_KEPT = 256


class Answers:
    """Recent decisions and outcomes (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.decisions: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self.outcomes: OrderedDict[str, Any] = OrderedDict()

    # --- intents -----------------------------------------------------------------------
    def decision(self, intent_id: str) -> tuple[str, dict[str, Any]] | None:
        """The content hash and decision remembered for ``intent_id``, if any."""
        return self.decisions.get(intent_id)

    def decided(
        self, intent_id: str, seen: str, decision: dict[str, Any], live: Callable[[str], bool]
    ) -> None:
        """Remember ``decision``; forget the oldest beyond ``limit`` unless ``live(id)``."""
        memory = self.decisions
        memory[intent_id] = (seen, decision)
        memory.move_to_end(intent_id)
        excess = len(memory) - self.limit
        if excess <= 0:
            return
        doomed: list[str] = []
        for iid in memory:  # oldest first; a live trade's decision is kept, in its place
            if len(doomed) == excess:
                break
            if not live(iid):
                doomed.append(iid)
        for iid in doomed:
            del memory[iid]

    # --- every other mutating call -------------------------------------------------------
    def outcome(self, update_id: str) -> Any:
        """The first outcome of the Update ``update_id``, or None."""
        return self.outcomes.get(update_id)

    def answered(self, update_id: str, result: Any) -> None:
        outcomes = self.outcomes
        outcomes[update_id] = result
        while len(outcomes) > OUTCOMES_KEPT:
            outcomes.popitem(last=False)

    # --- across continue-as-new ----------------------------------------------------------
    def carry(self) -> dict[str, Any]:
        decisions = [[iid, seen, d] for iid, (seen, d) in self.decisions.items()]
        outcomes = [[uid, result] for uid, result in self.outcomes.items()]
        return p.pack({"decisions": decisions, "outcomes": outcomes})

    @classmethod
    def restore(cls, limit: int, packed: dict[str, Any]) -> Answers:
        """The memory :meth:`carry` packed (a carry from before ``outcomes`` has none)."""
        answers = cls(limit)
        data = p.unpack(packed)
        for iid, seen, decision in data["decisions"]:
            answers.decisions[iid] = (seen, decision)
        for uid, result in data.get("outcomes", []):
            answers.outcomes[uid] = result
        return answers


class _Remembers(Protocol):
    answers: Answers


S = TypeVar("S", bound=_Remembers)
R = TypeVar("R")


def once(
    handler: Callable[[S, dict[str, Any]], Awaitable[R]],
) -> Callable[[S, dict[str, Any]], Awaitable[R]]:
    """A mutating Update handler that answers a repeated Update id (a retry, in this run or
    a later one) with its first outcome instead of applying it again. Called as a step of a
    ledger signal (no Update), it runs as is: the core's own checks make those idempotent."""

    @functools.wraps(handler)
    async def answer(self: S, request: dict[str, Any]) -> R:
        info = workflow.current_update_info()
        if info is None:
            return await handler(self, request)
        known: R | None = self.answers.outcome(info.id)
        if known is not None:
            return known
        result = await handler(self, request)
        self.answers.answered(info.id, result)
        return result

    return answer


__all__ = ["OUTCOMES_KEPT", "Answers", "once"]
