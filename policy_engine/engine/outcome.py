"""The outcome of one evaluation: what the compiled chain and the interpreter both return.

A plain tuple, read by named index (``outcome[STATUS]``, ``outcome[AMOUNT]``):
the generated chain builds one per evaluation, and a tuple is the cheapest
object Python has (a NamedTuple costs about 0.15 us more per evaluation, a
tenth of the whole approve path). :class:`~.verdict.Verdict` gives the same
fields by name (``verdict.approved``, ``verdict.approved_risk_abs``, ...).

=========== =====================================================================
index       meaning
=========== =====================================================================
STATUS      APPROVED, REJECTED or ERROR
RULE        the deciding rule's index (the rejecting or failing one, or an allow); -1 none
AMOUNT      the approved amount after clips (0.0 unless approved)
CLIPS       ``((rule index, from, to), ...)`` or None
WARNINGS    indexes of shadow rules that would have blocked, or None
MODE        the mode's index (mildest 0)
OVERRIDDEN  the mode comes from an override, not from the drawdown tiers
ERROR       for status ERROR: the :class:`~policy_engine.lang.errors.EvalError` (``at``: where)
=========== =====================================================================
"""

from __future__ import annotations

from typing import Final

from ..lang.errors import EvalError

APPROVED: Final = 0
REJECTED: Final = 1
ERROR: Final = 2

# Final, so that type checkers know which field an index reads.
STATUS: Final = 0
RULE: Final = 1
AMOUNT: Final = 2
CLIPS: Final = 3
WARNINGS: Final = 4
MODE: Final = 5
OVERRIDDEN: Final = 6
ERROR_AT: Final = 7

Clips = tuple[tuple[int, float, float], ...]  # (rule index, from, to)
# (status, rule, amount, clips, warnings, mode, overridden, error)
Outcome = tuple[int, int, float, Clips | None, tuple[int, ...] | None, int, bool, EvalError | None]

__all__ = [
    "AMOUNT",
    "APPROVED",
    "CLIPS",
    "ERROR",
    "ERROR_AT",
    "MODE",
    "OVERRIDDEN",
    "REJECTED",
    "RULE",
    "STATUS",
    "WARNINGS",
    "Clips",
    "Outcome",
]
