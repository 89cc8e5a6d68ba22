"""The outcome of one evaluation: what the compiled chain and the interpreter both return.

A NamedTuple, so that the fast path costs one tuple and callers still read
fields by name (``outcome.status``, ``outcome.amount``).
"""

from __future__ import annotations

from typing import NamedTuple

from ..lang.errors import EvalError

APPROVED, REJECTED, ERROR = 0, 1, 2


class Outcome(NamedTuple):
    """``status`` is APPROVED / REJECTED / ERROR."""

    status: int
    rule: int  # the deciding rule's index (the rejecting or failing one, or an allow); -1 none
    amount: float  # the approved amount after clips (0.0 unless approved)
    clips: tuple[tuple[int, float, float], ...] | None  # (rule index, from, to)
    warnings: tuple[int, ...] | None  # indexes of shadow rules that would have blocked
    mode: int  # the mode's index (mildest 0)
    overridden: bool  # the mode comes from an override, not from the drawdown tiers
    error: EvalError | None  # for status ERROR: what failed, ``at`` where

    @property
    def approved(self) -> bool:
        return self.status == APPROVED
