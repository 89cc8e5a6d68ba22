"""`policy verify`: prove with z3 what a policy can never do, or show the trade that breaks it.

world (the symbolic state and intent, within the linter's domains), translate (expressions
through the one function registry), chain (the rule chain exactly as ``Policy.decide``),
properties (the built-in ones and ``--against``), replay (solver models -> trades the real
engine decides). docs/verify.md says what is proved and what is assumed.
"""

from __future__ import annotations

from .properties import AGAINST, BUILTIN, Case, Result, verify

__all__ = ["AGAINST", "BUILTIN", "Case", "Result", "verify"]
